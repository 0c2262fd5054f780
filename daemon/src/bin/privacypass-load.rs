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
use privacypass_core::{
    b64, Client, Issuer, IssuerKey, KeySet, KeyValidity, TokenChallenge, TokenType, Verifier,
    VoprfClient, VoprfIssuer, VoprfIssuerKey,
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
}

/// Result of one load run.
struct Run {
    requests: usize,
    unexpected: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// CPU time (user and system) the daemons used during the run.
    server_cpu: Duration,
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
        }
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }
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
    };
    for t in tasks {
        let (lat, bad) = t.await.map_err(|e| e.to_string())??;
        run.requests += lat.len();
        run.unexpected += bad;
        run.latencies.extend(lat);
    }
    run.elapsed = started.elapsed();
    run.server_cpu = cpu_time(pids).saturating_sub(cpu_before);
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
        rows.push(run.row("issue (JSON-RPC)".to_owned(), conns, 1));
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
        rows.push(run.row("redeem, durable (fresh tokens)".to_owned(), conns, 1));
        spent.extend(bodies.iter().take(run.requests).cloned());
    }
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
        rows.push(run.row("redeem, already spent (-32021)".to_owned(), conns, 1));
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
    let conns = opts.connections.iter().copied().max().unwrap_or(64);
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
    for Row {
        name,
        conns,
        rate,
        p50,
        p99,
        unexpected,
        cpu,
    } in rows
    {
        println!(
            "| {name} | {conns} | {rate:.0} | {:.2} ms | {:.2} ms | {unexpected} | {cpu:.1} |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    println!("| in-process sign ceiling, {cores} cores | | {sign_ceiling:.0} | | | | |");
    println!("| in-process verify ceiling, {cores} cores | | {verify_ceiling:.0} | | | | |");
    for (label, issue, verify) in voprf_ceilings {
        println!("| in-process issue ceiling {label}, {cores} cores | | {issue:.0} | | | | |");
        println!("| in-process verify ceiling {label}, {cores} cores | | {verify:.0} | | | | |");
    }
    Ok(())
}
