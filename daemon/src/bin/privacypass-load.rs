//! Load generator for `make bench`: starts privacypassd on a fresh data directory, measures
//! issue, durable redeem and already-spent redeem over HTTP at several connection counts, the
//! same redeems in JSON-RPC batches of 16 calls (rows in calls per second), and the in-process
//! sign and verify ceilings on the same cores, then the same issue, fresh and already-spent
//! redeems for token types 1 and 5 (VOPRF P-384 and ristretto255) at the largest connection
//! count beside their in-process ceilings, batched issuance on /token-request (batches of 1, 10
//! and 100: generic for type 2, amortized for types 1 and 5, in tokens a second), and prints a
//! Markdown table. Each row also
//! gives the daemons' CPU time (user and system, from /proc) per call: a figure that moves far
//! less than the rate when the machine is shared.
//!
//! Beside the durable redeems it runs the same fresh redeems on a daemon with `--store memory:`
//! (or, with `--store URL`, calls that store's spend in process from as many threads), how many
//! spends each synced write carried (the daemon's `privacypass_store_commit_spends`), and a table
//! of the ratios the performance targets are stated in, with the rows each divides.
//!
//! Usage: privacypass-load --daemon PATH [--seconds N] [--connections 1,16,64] [--mint N]
//!        [--store URL --daemons N] [--ops issue,redeem,spent,batch,voprf,batch-issue]
//!
//! With `--daemons N` it starts N daemons on one key directory and the store URL (a shared
//! store such as Redis), and spreads the connections over them round-robin.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use privacypass_core::batch::{
    PendingEntry, PendingGenericBatch, AMORTIZED_REQUEST_MEDIA_TYPE, GENERIC_REQUEST_MEDIA_TYPE,
};
use privacypass_core::store::COMMIT_SIZE_BOUNDS;
use privacypass_core::{
    b64, Client, CommitSizes, Issuer, IssuerKey, KeySet, KeyValidity, TokenChallenge, TokenType,
    Verifier, VoprfClient, VoprfIssuer, VoprfIssuerKey,
};
use privacypass_rpc::{IssueParams, RedeemParams, ISSUE, REDEEM};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Options {
    daemon: PathBuf,
    seconds: f64,
    connections: Vec<usize>,
    /// Fresh tokens minted for each durable-redeem run (default: enough for 25,000/s).
    mint: Option<usize>,
    /// Store URL for the daemons (default: each its own RocksDB).
    store: Option<String>,
    daemons: usize,
    ops: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut opts = Options {
        daemon: PathBuf::new(),
        seconds: 3.0,
        connections: vec![1, 16, 64],
        mint: None,
        store: None,
        daemons: 1,
        ops: ["issue", "redeem", "spent", "batch", "voprf", "batch-issue"]
            .map(String::from)
            .to_vec(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--daemon" => opts.daemon = PathBuf::from(value),
            "--seconds" => opts.seconds = value.parse().map_err(|_| "bad --seconds")?,
            "--mint" => opts.mint = Some(value.parse().map_err(|_| "bad --mint")?),
            "--store" => opts.store = Some(value),
            "--daemons" => opts.daemons = value.parse().map_err(|_| "bad --daemons")?,
            "--ops" => opts.ops = value.split(',').map(str::to_owned).collect(),
            "--connections" => {
                opts.connections = value
                    .split(',')
                    .map(|c| c.parse().map_err(|_| "bad --connections"))
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if opts.daemon.as_os_str().is_empty() {
        return Err("--daemon PATH is required".into());
    }
    if opts.daemons == 0 || (opts.daemons > 1 && opts.store.is_none()) {
        return Err("--daemons N above 1 needs --store URL of a shared store".into());
    }
    Ok(opts)
}

struct Daemon {
    child: Child,
    addr: String,
    _dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn start_daemon(
    path: &PathBuf,
    n: usize,
    keys_dir: &PathBuf,
    store: Option<&str>,
) -> Result<Daemon, String> {
    let dir = std::env::temp_dir().join(format!("privacypass-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = Command::new(path);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--generate-key-if-missing",
        "true",
        // The benchmark measures the signing ceiling, not the shared limit on anonymous issuance.
        "--anonymous-issue-limit",
        "off",
        "--data-dir",
    ])
    .arg(&dir)
    .arg("--keys-dir")
    .arg(keys_dir);
    if let Some(store) = store {
        cmd.args(["--store", store]);
    }
    let mut child = cmd
        .env("PRIVACYPASS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(Daemon {
        child,
        addr,
        _dir: dir,
    })
}

/// One row of the printed table.
struct Row {
    name: String,
    conns: usize,
    rate: f64,
    p50: Duration,
    p99: Duration,
    unexpected: usize,
    /// The daemons' CPU µs per call.
    cpu: f64,
    /// The store's synced writes during the run, by spends each (a single daemon's
    /// group-committing store).
    commits: Option<CommitSizes>,
}

/// Result of one load run.
struct Run {
    requests: usize,
    unexpected: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// CPU time (user and system) the daemons used during the run.
    server_cpu: Duration,
    /// The daemon's store's synced writes during the run (one daemon whose store reports them).
    commits: Option<CommitSizes>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The daemons' CPU time per call, in µs, for requests of `calls` calls each.
    fn cpu_per_call(&self, calls: usize) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / (self.requests * calls).max(1) as f64
    }

    /// The table's row of this run: `calls` calls a request, so the rate is in calls a second.
    fn row(&mut self, name: String, conns: usize, calls: usize) -> Row {
        Row {
            name,
            conns,
            rate: self.rate() * calls as f64,
            p50: self.percentile(0.5),
            p99: self.percentile(0.99),
            unexpected: self.unexpected,
            cpu: self.cpu_per_call(calls),
            commits: self.commits.take(),
        }
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }
}

/// The group-commit sizes a daemon's /metrics reports so far (`privacypass_store_commit_spends`),
/// or None when its store reports none.
fn commit_sizes(addr: &str) -> Option<CommitSizes> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let mut sizes = CommitSizes::default();
    let (mut found, mut below) = (false, 0);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("privacypass_store_commit_spends") else {
            continue;
        };
        let (series, value) = rest.rsplit_once(' ')?;
        let value: u64 = value.parse().ok()?;
        found = true;
        match series {
            "_sum" => sizes.spends = value,
            "_count" => sizes.writes = value,
            _ => {
                let bound = series.strip_prefix("_bucket{le=\"")?.strip_suffix("\"}")?;
                let i = COMMIT_SIZE_BOUNDS
                    .iter()
                    .position(|b| b.to_string() == bound)
                    .unwrap_or(COMMIT_SIZE_BOUNDS.len());
                // The exposition's buckets are cumulative.
                sizes.buckets[i] = value.saturating_sub(below);
                below = value;
            }
        }
    }
    found.then_some(sizes)
}

/// CPU time (user and system) the processes `pids` have used so far, from /proc.
fn cpu_time(pids: &[u32]) -> Duration {
    // SAFETY: sysconf reads a constant of the system and has no other effect.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let used: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // The fields after the command name, which is in parentheses and may hold spaces:
            // utime and stime are the 14th and 15th fields of the line.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .sum();
    Duration::from_secs_f64(used as f64 / ticks)
}

fn http_post(addr: &str, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// Sends requests on one keep-alive connection; returns per-request latencies and statuses.
async fn connection(
    addr: String,
    requests: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
    expect: u16,
) -> Result<(Vec<Duration>, usize), String> {
    let mut stream = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut latencies = Vec::new();
    let mut unexpected = 0;
    let mut buf = Vec::with_capacity(4096);
    while Instant::now() < deadline {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(req) = requests.get(i) else { break };
        let started = Instant::now();
        stream.write_all(req).await.map_err(|e| e.to_string())?;
        buf.clear();
        let (status, header_end, content_length) = loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (status, end + 4, len);
            }
        };
        while buf.len() < header_end + content_length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        latencies.push(started.elapsed());
        if status != expect {
            unexpected += 1;
        }
    }
    Ok((latencies, unexpected))
}

async fn load(
    addrs: &[String],
    pids: &[u32],
    path: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    conns: usize,
    seconds: f64,
    expect: u16,
) -> Result<Run, String> {
    let target = Target {
        path,
        content_type: "application/json",
    };
    load_as(addrs, pids, target, bodies, conns, seconds, expect).await
}

/// Where a load run posts, and as what.
#[derive(Clone, Copy)]
struct Target<'a> {
    path: &'a str,
    content_type: &'a str,
}

async fn load_as(
    addrs: &[String],
    pids: &[u32],
    target: Target<'_>,
    bodies: Arc<Vec<Vec<u8>>>,
    conns: usize,
    seconds: f64,
    expect: u16,
) -> Result<Run, String> {
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        bodies
            .iter()
            .map(|b| http_post(&addrs[0], target.path, target.content_type, b))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let commits_before = match addrs {
        [one] => commit_sizes(one),
        _ => None,
    };
    let cpu_before = cpu_time(pids);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..conns)
        .map(|i| {
            tokio::spawn(connection(
                addrs[i % addrs.len()].clone(),
                requests.clone(),
                next.clone(),
                deadline,
                expect,
            ))
        })
        .collect();
    let mut run = Run {
        requests: 0,
        unexpected: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        server_cpu: Duration::ZERO,
        commits: None,
    };
    for t in tasks {
        let (lat, bad) = t.await.map_err(|e| e.to_string())??;
        run.requests += lat.len();
        run.unexpected += bad;
        run.latencies.extend(lat);
    }
    run.elapsed = started.elapsed();
    run.server_cpu = cpu_time(pids).saturating_sub(cpu_before);
    if let Some(before) = commits_before {
        run.commits = commit_sizes(&addrs[0])
            .map(|after| after.since(&before))
            .filter(|c| c.writes > 0);
    }
    if next.load(Ordering::Relaxed) > requests.len() {
        eprintln!(
            "note: ran out of prepared requests ({}); the rate is a lower bound",
            requests.len()
        );
    }
    Ok(run)
}

/// In-process rate of `op` on `threads` threads for `seconds`.
fn ceiling(threads: usize, seconds: f64, op: impl Fn() + Send + Sync + 'static) -> f64 {
    let op = Arc::new(op);
    let count = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (op, count) = (op.clone(), count.clone());
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    op();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    count.load(Ordering::Relaxed) as f64 / seconds
}

/// Spends a second of the store at `url` called in process from `threads` threads at once, each
/// spend a fresh nonce under a key no daemon uses.
fn store_ceiling(url: &str, threads: usize, seconds: f64) -> Result<f64, String> {
    let store = privacypass_stores::open(url).map_err(|e| e.to_string())?;
    let failed = Arc::new(AtomicUsize::new(0));
    let until = privacypass_core::unix_now() + 3600;
    let counted = failed.clone();
    let rate = ceiling(threads, seconds, move || {
        let mut nonce = [0u8; 32];
        let recorded = privacypass_core::crypto::random_bytes(&mut nonce).is_ok()
            && matches!(
                store.spend(&[0xa5; 32], &nonce, until),
                Ok(privacypass_core::SpendOutcome::Recorded)
            );
        if !recorded {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    match failed.load(Ordering::Relaxed) {
        0 => Ok(rate),
        n => Err(format!("{n} in-process spends on {url} failed")),
    }
}

/// `n` tokens made by `one` (a request, the issuer's response, the client's finalize: the
/// token verified) on all cores; a failed one is left out.
fn mint_with<F>(n: usize, one: F) -> Vec<Vec<u8>>
where
    F: Fn() -> Option<Vec<u8>> + Clone + Send + 'static,
{
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per = n.div_ceil(threads);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let one = one.clone();
            std::thread::spawn(move || (0..per).filter_map(|_| one()).collect::<Vec<_>>())
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .collect()
}

/// `n` type 2 tokens of `key`.
fn mint(
    key: &Arc<IssuerKey>,
    keys: &Arc<KeySet>,
    challenge: &TokenChallenge,
    n: usize,
) -> Vec<Vec<u8>> {
    let client = Arc::new(Client::new(key.public_key().clone()));
    let issuer = Arc::new(Issuer::new(keys.clone()));
    let challenge = challenge.clone();
    mint_with(n, move || {
        let pending = client.request(&challenge).ok()?;
        let response = issuer
            .issue_request(&pending.request().encode(), privacypass_core::unix_now())
            .ok()?;
        Some(pending.finalize(&response.encode()).ok()?.encode())
    })
}

/// `n` tokens of a VOPRF key (the proof checked).
fn mint_voprf(
    keys: &Arc<KeySet>,
    key: &Arc<VoprfIssuerKey>,
    n: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let challenge = voprf_challenge(key.token_type())?;
    let client = Arc::new(VoprfClient::new(key.public_key().clone()));
    let issuer = Arc::new(VoprfIssuer::new(keys.clone()));
    Ok(mint_with(n, move || {
        let pending = client.request(&challenge).ok()?;
        let response = issuer
            .issue_request(&pending.request().encode(), privacypass_core::unix_now())
            .ok()?;
        Some(pending.finalize(&response.encode()).ok()?.encode())
    }))
}

fn voprf_challenge(token_type: TokenType) -> Result<TokenChallenge, String> {
    TokenChallenge::new(token_type.value(), b"127.0.0.1", &[], b"").map_err(|e| e.to_string())
}

/// The VOPRF rows: `keys generate` names, table labels, and the fresh redeems a second each
/// type is minted for (about twice what 2 cores redeem).
const VOPRF_TYPES: [(TokenType, &str, &str, f64); 2] = [
    (
        TokenType::VoprfP384,
        "voprf-p384",
        "type 1 (P-384)",
        3_000.0,
    ),
    (
        TokenType::VoprfRistretto255,
        "voprf-ristretto255",
        "type 5 (ristretto255)",
        12_000.0,
    ),
];

/// A JSON-RPC call of `method` with its typed params (the RPC trait's own types).
fn call(id: usize, method: &str, params: impl Serialize) -> serde_json::Value {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn redeem_params(token: &[u8]) -> RedeemParams {
    RedeemParams::Token {
        token: b64::encode_url(token),
        challenge: None,
    }
}

fn redeem_body(token: &[u8]) -> Vec<u8> {
    call(1, REDEEM, redeem_params(token))
        .to_string()
        .into_bytes()
}

/// Calls in each JSON-RPC batch of the batch rows.
const BATCH: usize = 16;

/// A JSON-RPC batch redeeming each of `tokens`.
fn batch_body(tokens: &[Vec<u8>]) -> Vec<u8> {
    let calls: Vec<serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| call(i, REDEEM, redeem_params(t)))
        .collect();
    serde_json::Value::Array(calls).to_string().into_bytes()
}

fn main() -> Result<(), String> {
    let opts = options()?;
    let keys_dir =
        std::env::temp_dir().join(format!("privacypass-bench-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&keys_dir);
    let wants = |op: &str| opts.ops.iter().any(|o| o == op);
    if wants("voprf") || wants("batch-issue") {
        // A key of each type, made before the daemons start (which then make none of their own).
        for (_, kind, _, _) in [(TokenType::BlindRsa2048, "blind-rsa-2048", "", 0.0)]
            .into_iter()
            .chain(VOPRF_TYPES)
        {
            let status = Command::new(&opts.daemon)
                .args(["keys", "generate", "--type", kind, "--keys-dir"])
                .arg(&keys_dir)
                .stdout(Stdio::null())
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("keys generate --type {kind} failed"));
            }
        }
    }
    let daemons = (0..opts.daemons)
        .map(|n| start_daemon(&opts.daemon, n, &keys_dir, opts.store.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let addrs: Vec<String> = daemons.iter().map(|d| d.addr.clone()).collect();
    let pids: Vec<u32> = daemons.iter().map(|d| d.child.id()).collect();
    let key_files: Vec<Vec<u8>> = std::fs::read_dir(&keys_dir)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    let key = key_files
        .iter()
        .find_map(|pem| IssuerKey::from_pem(pem).ok())
        .ok_or("the daemon made no RSA key")?;
    let voprf_keys: Vec<VoprfIssuerKey> = key_files
        .iter()
        .filter_map(|pem| VoprfIssuerKey::from_pem(pem).ok())
        .collect();
    let key_id = hex::encode(key.public_key().token_key_id());
    let mut set = KeySet::new(0);
    let key = set
        .insert_issuer_key(
            key,
            KeyValidity::new(0, u64::MAX).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    let keys = Arc::new(set);
    let challenge = TokenChallenge::new(2, b"127.0.0.1", &[], b"").map_err(|e| e.to_string())?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());

    // Ceilings, in process, on all cores.
    let pending = Client::new(key.public_key().clone())
        .request(&challenge)
        .map_err(|e| e.to_string())?;
    let blinded = pending.request().encode();
    let (k, b) = (key.clone(), blinded.clone());
    let sign_ceiling = ceiling(cores, 2.0, move || {
        let _ = k.blind_sign(&b[3..]);
    });
    let token = mint(&key, &keys, &challenge, 1)
        .pop()
        .ok_or("mint failed")?;
    let verifier = Verifier::new(keys.clone());
    let t = token.clone();
    let verify_ceiling = ceiling(cores, 2.0, move || {
        let _ = verifier.verify(&t, &[], 1);
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let issue = IssueParams {
        blinded_token: b64::encode_url(&blinded),
        key_id,
    };
    let issue_body = call(1, ISSUE, issue).to_string().into_bytes();
    for &conns in opts.connections.iter().filter(|_| wants("issue")) {
        let bodies = Arc::new(vec![issue_body.clone(); 1_000_000]);
        let mut run = runtime.block_on(load(
            &addrs,
            &pids,
            "/rpc",
            bodies,
            conns,
            opts.seconds,
            200,
        ))?;
        rows.push(run.row(ISSUE_ROW.to_owned(), conns, 1));
    }
    // Durable redeems need one fresh token each: mint enough for a generous rate.
    let budget = opts.mint.unwrap_or((25_000.0 * opts.seconds) as usize);
    // Batches redeem more calls a second than single requests do.
    let batch_budget = opts.mint.unwrap_or((40_000.0 * opts.seconds) as usize);
    eprintln!("minting {budget} tokens per redeem run, {batch_budget} per batch run...");
    let mut spent: Vec<Vec<u8>> = Vec::new();
    for &conns in opts
        .connections
        .iter()
        .filter(|_| wants("redeem") || wants("spent"))
    {
        let tokens = mint(
            &key,
            &keys,
            &challenge,
            if conns == 1 { budget / 4 } else { budget },
        );
        let bodies = Arc::new(tokens.iter().map(|t| redeem_body(t)).collect::<Vec<_>>());
        let mut run = runtime.block_on(load(
            &addrs,
            &pids,
            "/rpc",
            bodies.clone(),
            conns,
            opts.seconds,
            200,
        ))?;
        if !wants("redeem") {
            spent.extend(bodies.iter().take(run.requests).cloned());
            continue;
        }
        rows.push(run.row(FRESH_ROW.to_owned(), conns, 1));
        spent.extend(bodies.iter().take(run.requests).cloned());
    }
    // The same fresh redeems on a daemon whose spends stay in memory (`--store memory:`), at the
    // largest connection count: what durability costs, measured beside it.
    let most = opts.connections.iter().copied().max().unwrap_or(64);
    if wants("redeem") && opts.store.is_none() {
        let memory = start_daemon(&opts.daemon, opts.daemons, &keys_dir, Some("memory:"))?;
        let tokens = mint(&key, &keys, &challenge, budget);
        let bodies = Arc::new(tokens.iter().map(|t| redeem_body(t)).collect::<Vec<_>>());
        let mut run = runtime.block_on(load(
            std::slice::from_ref(&memory.addr),
            &[memory.child.id()],
            "/rpc",
            bodies,
            most,
            opts.seconds,
            200,
        ))?;
        rows.push(run.row(MEMORY_FRESH_ROW.to_owned(), most, 1));
    }
    // A shared store's own rate, in process: as many spenders at once as the largest run had
    // connections.
    let store_rate = match &opts.store {
        Some(url) if wants("redeem") => Some(store_ceiling(url, most, opts.seconds)?),
        _ => None,
    };
    for &conns in opts.connections.iter().filter(|_| wants("spent")) {
        let bodies: Vec<Vec<u8>> = spent.iter().cycle().take(2_000_000).cloned().collect();
        let mut run = runtime.block_on(load(
            &addrs,
            &pids,
            "/rpc",
            Arc::new(bodies),
            conns,
            opts.seconds,
            403,
        ))?;
        rows.push(run.row(SPENT_ROW.to_owned(), conns, 1));
    }
    // The same redeems, BATCH calls a request: fresh tokens, then the same batches again.
    let mut spent_batches: Vec<Vec<u8>> = Vec::new();
    for &conns in opts.connections.iter().filter(|_| wants("batch")) {
        let tokens = mint(
            &key,
            &keys,
            &challenge,
            if conns == 1 {
                batch_budget / 4
            } else {
                batch_budget
            },
        );
        let bodies: Vec<Vec<u8>> = tokens.chunks_exact(BATCH).map(batch_body).collect();
        let bodies = Arc::new(bodies);
        let mut run = runtime.block_on(load(
            &addrs,
            &pids,
            "/rpc",
            bodies.clone(),
            conns,
            opts.seconds,
            200,
        ))?;
        rows.push(run.row(
            "redeem, durable, batches of 16 (calls/s)".to_owned(),
            conns,
            BATCH,
        ));
        spent_batches.extend(bodies.iter().take(run.requests).cloned());
    }
    for &conns in opts.connections.iter().filter(|_| wants("batch")) {
        let bodies: Vec<Vec<u8>> = spent_batches
            .iter()
            .cycle()
            .take(200_000)
            .cloned()
            .collect();
        let mut run = runtime.block_on(load(
            &addrs,
            &pids,
            "/rpc",
            Arc::new(bodies),
            conns,
            opts.seconds,
            200,
        ))?;
        rows.push(run.row(
            "redeem, already spent, batches of 16 (calls/s)".to_owned(),
            conns,
            BATCH,
        ));
    }
    // Types 1 and 5 at the largest connection count: issue (blind evaluation and proof),
    // durable redeems of fresh tokens (the PRF evaluated with the private key), and the same
    // tokens again (already spent: the seen-token set spares the evaluation).
    let mut voprf_ceilings = Vec::new();
    let conns = most;
    for key in voprf_keys.into_iter().filter(|_| wants("voprf")) {
        let Some(&(token_type, _, label, per_second)) =
            VOPRF_TYPES.iter().find(|t| t.0 == key.token_type())
        else {
            continue;
        };
        let key_id = hex::encode(key.public_key().token_key_id());
        let mut set = KeySet::new(0);
        let key = set
            .insert_voprf_key(
                key,
                KeyValidity::new(0, u64::MAX).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
        let keys = Arc::new(set);
        let request = VoprfClient::new(key.public_key().clone())
            .request(&voprf_challenge(token_type)?)
            .map_err(|e| e.to_string())?
            .request()
            .encode();
        let issuer = VoprfIssuer::new(keys.clone());
        let r = request.clone();
        let issue_ceiling = ceiling(cores, 2.0, move || {
            let _ = issuer.issue_request(&r, 1);
        });
        let token = mint_voprf(&keys, &key, 1)?.pop().ok_or("mint failed")?;
        let verifier = Verifier::new(keys.clone());
        let verify_ceiling = ceiling(cores, 2.0, move || {
            let _ = verifier.verify(&token, &[], 1);
        });
        voprf_ceilings.push((label, issue_ceiling, verify_ceiling));
        let issue = IssueParams {
            blinded_token: b64::encode_url(&request[3..]),
            key_id,
        };
        let body = call(1, ISSUE, issue).to_string().into_bytes();
        let mut run = runtime.block_on(load(
            &addrs,
            &pids,
            "/rpc",
            Arc::new(vec![body; 1_000_000]),
            conns,
            opts.seconds,
            200,
        ))?;
        let issue_row = format!("issue {label} (JSON-RPC)");
        rows.push(run.row(issue_row, conns, 1));
        let budget = opts.mint.unwrap_or((per_second * opts.seconds) as usize);
        eprintln!("minting {budget} {label} tokens...");
        let tokens = mint_voprf(&keys, &key, budget)?;
        let bodies = Arc::new(tokens.iter().map(|t| redeem_body(t)).collect::<Vec<_>>());
        for (what, expect) in [
            ("durable (fresh tokens)", 200),
            ("already spent (-32021)", 403),
        ] {
            let bodies = if expect == 200 {
                bodies.clone()
            } else {
                let spent: Vec<Vec<u8>> = bodies.iter().take(run.requests).cloned().collect();
                Arc::new(spent.iter().cycle().take(1_000_000).cloned().collect())
            };
            run = runtime.block_on(load(
                &addrs,
                &pids,
                "/rpc",
                bodies,
                conns,
                opts.seconds,
                expect,
            ))?;
            rows.push(run.row(format!("redeem {label}, {what}"), conns, 1));
        }
    }
    // Batched issuance on /token-request, in tokens a second:
    // generic batches of type 2 requests (signed on all cores), amortized batches of types 1
    // and 5 (one proof a batch), beside single requests of the same body kind.
    let batch_keys: Vec<(TokenType, Option<Arc<VoprfIssuerKey>>)> = if wants("batch-issue") {
        let mut list = vec![(TokenType::BlindRsa2048, None)];
        for pem in &key_files {
            if let Ok(k) = VoprfIssuerKey::from_pem(pem) {
                list.push((k.token_type(), Some(Arc::new(k))));
            }
        }
        list
    } else {
        Vec::new()
    };
    // Eight connections keep both cores busy with batches of 100 without queueing seconds of
    // them.
    let batch_conns = conns.min(8);
    for (token_type, voprf) in batch_keys {
        for n in [1usize, 10, 100] {
            let (content_type, body) = match &voprf {
                None => {
                    let client = Client::new(key.public_key().clone());
                    let entries = (0..n)
                        .map(|_| {
                            client
                                .request(&challenge)
                                .map(|p| PendingEntry::BlindRsa(Box::new(p)))
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| e.to_string())?;
                    (
                        GENERIC_REQUEST_MEDIA_TYPE,
                        PendingGenericBatch::new(entries).request().encode(),
                    )
                }
                Some(k) => (
                    AMORTIZED_REQUEST_MEDIA_TYPE,
                    VoprfClient::new(k.public_key().clone())
                        .request_amortized(&voprf_challenge(token_type)?, n)
                        .map_err(|e| e.to_string())?
                        .request()
                        .encode(),
                ),
            };
            let target = Target {
                path: "/token-request",
                content_type,
            };
            let mut run = runtime.block_on(load_as(
                &addrs,
                &pids,
                target,
                Arc::new(vec![body; 200_000]),
                batch_conns,
                opts.seconds,
                200,
            ))?;
            let kind = if voprf.is_some() {
                "amortized"
            } else {
                "generic"
            };
            rows.push(run.row(
                format!(
                    "issue type {}, {kind} batches of {n} (tokens/s)",
                    token_type.value()
                ),
                batch_conns,
                n,
            ));
        }
    }
    drop(daemons);
    let _ = std::fs::remove_dir_all(&keys_dir);
    if let Some(store) = &opts.store {
        println!("{} daemon(s) on {store}", opts.daemons);
    }

    println!(
        "| operation | connections | req/s | p50 | p99 | unexpected answers | daemon CPU µs per call |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {:.0} | {:.2} ms | {:.2} ms | {} | {:.1} |",
            row.name,
            row.conns,
            row.rate,
            row.p50.as_secs_f64() * 1e3,
            row.p99.as_secs_f64() * 1e3,
            row.unexpected,
            row.cpu
        );
    }
    println!("| in-process sign ceiling, {cores} cores | | {sign_ceiling:.0} | | | | |");
    println!("| in-process verify ceiling, {cores} cores | | {verify_ceiling:.0} | | | | |");
    for (label, issue, verify) in voprf_ceilings {
        println!("| in-process issue ceiling {label}, {cores} cores | | {issue:.0} | | | | |");
        println!("| in-process verify ceiling {label}, {cores} cores | | {verify:.0} | | | | |");
    }
    print_commits(&rows);
    if let (Some(url), Some(rate)) = (&opts.store, store_rate) {
        println!("| in-process spends on {url}, {most} threads | | {rate:.0} | | | | |");
    }
    print_ratios(&rows, most, sign_ceiling, store_rate);
    Ok(())
}

const ISSUE_ROW: &str = "issue (JSON-RPC)";
const FRESH_ROW: &str = "redeem, durable (fresh tokens)";
const MEMORY_FRESH_ROW: &str = "redeem, memory: store (fresh tokens)";
const SPENT_ROW: &str = "redeem, already spent (-32021)";

/// How the runs of a store that group-commits shared their fsyncs.
fn print_commits(rows: &[Row]) {
    let with: Vec<(&Row, &CommitSizes)> = rows
        .iter()
        .filter_map(|r| Some((r, r.commits.as_ref()?)))
        .collect();
    if with.is_empty() {
        return;
    }
    println!();
    println!("| run (group commit) | connections | synced writes | spends per write: mean | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let bound = |b: u64| match b {
        u64::MAX => format!("> {}", COMMIT_SIZE_BOUNDS[COMMIT_SIZE_BOUNDS.len() - 1]),
        b => format!("≤ {b}"),
    };
    for (row, c) in with {
        println!(
            "| {} | {} | {} | {:.1} | {} | {} | {} |",
            row.name,
            row.conns,
            c.writes,
            c.mean(),
            bound(c.quantile_bound(0.5)),
            bound(c.quantile_bound(0.99)),
            bound(c.quantile_bound(1.0)),
        );
    }
}

/// The ratios the performance targets are stated in, each beside the rows it divides, from this
/// one run.
fn print_ratios(rows: &[Row], conns: usize, sign_ceiling: f64, store_rate: Option<f64>) {
    let find = |name: &str| rows.iter().find(|r| r.name == name && r.conns == conns);
    let rate = |r: &Row| format!("{:.0}/s, {:.1} µs CPU", r.rate, r.cpu);
    // (what, value, of what, the target's bound, whether the value must be at least it)
    let mut lines: Vec<(&str, f64, String, f64, bool)> = Vec::new();
    if let (Some(durable), Some(memory)) = (find(FRESH_ROW), find(MEMORY_FRESH_ROW)) {
        let of = format!("{} ÷ {}", rate(durable), rate(memory));
        lines.push((
            "redeem fresh: durable ÷ memory: store",
            durable.rate / memory.rate,
            of,
            0.9,
            true,
        ));
    }
    if let (Some(durable), Some(store)) = (find(FRESH_ROW), store_rate) {
        let of = format!("{} ÷ {store:.0}/s", rate(durable));
        let what = "redeem fresh on the shared store ÷ the store's own spends";
        lines.push((what, durable.rate / store, of, 0.8, true));
    }
    if let (Some(memory), Some(spent)) = (find(MEMORY_FRESH_ROW), find(SPENT_ROW)) {
        let of = format!("{} ÷ {}", rate(memory), rate(spent));
        let what = "redeem: fresh (memory: store) ÷ already spent";
        lines.push((what, memory.rate / spent.rate, of, 0.6, true));
    }
    if let Some(issue) = find(ISSUE_ROW) {
        let of = format!("{} ÷ {sign_ceiling:.0}/s", rate(issue));
        lines.push((
            "issue ÷ in-process sign ceiling",
            issue.rate / sign_ceiling,
            of,
            0.92,
            true,
        ));
        let (p50, p99) = (issue.p50.as_secs_f64(), issue.p99.as_secs_f64());
        let spread = if p50 > 0.0 { p99 / p50 } else { f64::INFINITY };
        let of = format!("{:.2} ms ÷ {:.2} ms", p99 * 1e3, p50 * 1e3);
        lines.push(("issue p99 ÷ p50", spread, of, 4.0, false));
    }
    if lines.is_empty() {
        return;
    }
    println!();
    println!("| ratio, {conns} connections | value | of | target | met |");
    println!("|---|---:|---|---:|---|");
    for (what, value, of, bound, at_least) in lines {
        let (target, met) = if at_least {
            (format!("≥ {bound}"), value >= bound)
        } else {
            (format!("≤ {bound}"), value <= bound)
        };
        let met = if met { "yes" } else { "no" };
        println!("| {what} | {value:.2} | {of} | {target} | {met} |");
    }
}
