//! A privacypassd started by the test on 127.0.0.1 with its own data directory, and helpers to
//! mint tokens and call it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use privacypass_core::directory::IssuerDirectory;
use privacypass_core::{
    b64, Client, Issuer, IssuerKey, KeySet, KeyValidity, Token, TokenChallenge, TokenType,
    VoprfPublicKey,
};
use serde_json::{json, Value};

pub struct Daemon {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    /// Where the daemon's info-level log goes, when the test reads it.
    log: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl Daemon {
    /// Starts a daemon on a fresh data directory with a generated key.
    pub fn start(dir: &Path, extra: &[&str]) -> Daemon {
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut daemon = Daemon {
            child: None,
            url: String::new(),
            data_dir: dir.to_owned(),
            args,
            log: None,
            env: Vec::new(),
        };
        daemon.spawn();
        daemon
    }

    /// Starts a daemon with these environment variables set.
    pub fn start_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut daemon = Daemon {
            child: None,
            url: String::new(),
            data_dir: dir.to_owned(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            log: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        daemon.spawn();
        daemon
    }

    /// Starts a daemon whose info-level log (one line per request) goes to `log`.
    pub fn start_logged(dir: &Path, extra: &[&str], log: &Path) -> Daemon {
        let mut daemon = Daemon {
            child: None,
            url: String::new(),
            data_dir: dir.to_owned(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            log: Some(log.to_owned()),
            env: Vec::new(),
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_privacypassd"))
            .arg("serve")
            .args([
                "--listen",
                "127.0.0.1:0",
                "--generate-key-if-missing",
                "true",
            ])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(
                "PRIVACYPASS_LOG",
                if self.log.is_some() { "info" } else { "warn" },
            )
            .stdout(Stdio::piped())
            .stderr(match &self.log {
                Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
                None => Stdio::inherit(),
            })
            .spawn()
            .expect("start privacypassd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "unexpected first line {line:?}"
        );
        self.url = url;
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let status = self.child.as_mut().unwrap().wait().unwrap();
        self.child = None;
        status
    }

    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    /// Starts the daemon again after `kill9`.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the daemon is still running");
        self.spawn();
    }

    /// `--keys-dir` when the test gave one, else the default under the data directory.
    pub fn keys_dir(&self) -> PathBuf {
        self.args
            .iter()
            .position(|a| a == "--keys-dir")
            .and_then(|i| self.args.get(i + 1))
            .map_or_else(|| self.data_dir.join("keys"), PathBuf::from)
    }

    /// The issuer key the daemon generated, read from its key directory.
    pub fn issuer_key(&self) -> IssuerKey {
        let pem_path = std::fs::read_dir(self.keys_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.extension().is_some_and(|e| e == "pem")
                    && !std::fs::read(p)
                        .unwrap()
                        .starts_with(b"-----BEGIN PRIVACYPASS VOPRF")
            })
            .unwrap();
        IssuerKey::from_pem(&std::fs::read(pem_path).unwrap()).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// (HTTP status, JSON body).
pub fn post_json(agent: &ureq::Agent, url: &str, body: &Value) -> (u16, Value) {
    let mut resp = agent.post(url).send_json(body).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

pub fn rpc(agent: &ureq::Agent, url: &str, method: &str, params: Value) -> (u16, Value) {
    post_json(
        agent,
        url,
        &json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
    )
}

pub fn challenge() -> TokenChallenge {
    TokenChallenge::new(2, b"127.0.0.1", &[5; 32], b"").unwrap()
}

/// Mints tokens in-process with the daemon's own key (fast, no HTTP).
pub struct Minter {
    issuer: Issuer,
    client: Client,
    pub challenge: TokenChallenge,
}

impl Minter {
    pub fn new(key: IssuerKey) -> Minter {
        let public = key.public_key().clone();
        let mut set = KeySet::new(0);
        set.insert_issuer_key(key, KeyValidity::new(0, u64::MAX).unwrap())
            .unwrap();
        Minter {
            issuer: Issuer::new(Arc::new(set)),
            client: Client::new(public),
            challenge: challenge(),
        }
    }

    pub fn token(&self) -> Token {
        let pending = self.client.request(&self.challenge).unwrap();
        let response = self
            .issuer
            .issue_request(&pending.request().encode(), 1)
            .unwrap();
        pending.finalize(&response.encode()).unwrap()
    }
}

pub fn redeem_params(token: &Token) -> Value {
    json!({"token": b64::encode_url(&token.encode())})
}

pub fn error_code(body: &Value) -> Option<i64> {
    body.pointer("/error/code").and_then(Value::as_i64)
}

/// Waits, if needed, until at least 30 s remain in the current rate-limit window of
/// `window_secs` (windows are aligned to the Unix epoch), so that a test's counts all fall in
/// one window.
pub fn clear_of_window_end(window_secs: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let left = window_secs - now % window_secs;
    if left < 30 {
        std::thread::sleep(Duration::from_secs(left + 1));
    }
}

/// Runs `privacypassd ARGS --keys-dir KEYS_DIR` to its end; its standard output.
pub fn privacypassd(args: &[&str], keys_dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args(args)
        .arg("--keys-dir")
        .arg(keys_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "privacypassd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The hex key id `keys generate` / `keys import` printed.
pub fn printed_id(out: &str) -> String {
    out.split_whitespace()
        .find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap()
        .to_owned()
}

/// A keys directory holding one key of each type; their ids (hex) in the order 2, 1, 5.
pub fn three_keys(keys_dir: &Path) -> [String; 3] {
    ["blind-rsa-2048", "voprf-p384", "voprf-ristretto255"]
        .map(|t| printed_id(&privacypassd(&["keys", "generate", "--type", t], keys_dir)))
}

/// The daemon's issuer directory.
pub fn directory(daemon: &Daemon) -> IssuerDirectory {
    let mut resp = agent()
        .get(format!(
            "{}/.well-known/private-token-issuer-directory",
            daemon.url
        ))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    IssuerDirectory::from_json(resp.body_mut().read_to_string().unwrap().as_bytes()).unwrap()
}

/// The daemon's VOPRF key of `token_type`, from its directory.
pub fn voprf_key(daemon: &Daemon, token_type: TokenType) -> std::sync::Arc<VoprfPublicKey> {
    let listed = directory(daemon);
    let key = listed
        .token_keys
        .iter()
        .find(|k| k.token_type == token_type.value())
        .unwrap();
    std::sync::Arc::new(VoprfPublicKey::from_bytes(token_type, &key.token_key).unwrap())
}

/// The daemon's `/metrics` text.
pub fn metrics_text(daemon: &Daemon) -> String {
    agent()
        .get(format!("{}/metrics", daemon.url))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// The value of the first line of the daemon's `/metrics` that starts with `line_start` (0 when
/// none does).
pub fn metric(daemon: &Daemon, line_start: &str) -> u64 {
    metrics_text(daemon)
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse().unwrap())
}

/// Redeems each token once through JSON-RPC: every one succeeds.
pub fn redeem_all(daemon: &Daemon, tokens: &[Token]) {
    for token in tokens {
        let (status, body) = rpc(
            &agent(),
            &format!("{}/rpc", daemon.url),
            "redeem",
            redeem_params(token),
        );
        assert_eq!(
            (status, &body["result"]),
            (200, &json!("success")),
            "{body}"
        );
    }
}
