//! The shared store: spends, Idempotency-Key records and rate-limit counters on Redis or Valkey,
//! standalone or cluster, so that several daemons (and C, Go or nginx hosts through
//! libprivacypass) spend each token once between them.
//!
//! A synchronous client (no tokio: the C library links this module). URLs:
//!
//! - `redis://[[USER]:PASSWORD@]HOST:PORT[/DB][?OPTIONS]`
//! - `redis+cluster://[[USER]:PASSWORD@]H1:P1,H2:P2,...[?OPTIONS]` (the nodes to discover the
//!   cluster from; any one reachable node is enough)
//!
//! with `OPTIONS` among `pool=N` (connections, 1 to 64, default 4), `timeout_ms=MS`
//! (connect, read and write timeout, default 2000: a dead or unreachable Redis fails a request
//! within that time instead of hanging it), and, standalone only, `wait=N` with
//! `wait_timeout_ms=MS` (default 100): a spend is acknowledged only once `WAIT` reports it on N
//! replicas (see Durability).
//!
//! # Keys
//!
//! - `pp:spend:<hex token_key_id>:<hex nonce>` = `1`, expiring at the key's end of redemption
//!   plus [`EXPIRY_MARGIN_SECS`] (so that clock skew between hosts and Redis cannot drop a spend
//!   that a host still accepts), or never when the key has no end. `retain_until` moves every
//!   spend of a key forward when the key's end moves forward.
//! - `pp:end:<hex token_key_id>` = the latest end `retain_until` was given for the key. No hash tag: the spends of
//!   one key spread over every slot, hence every primary of a cluster.
//! - `pp:idem:<Idempotency-Key>` = `F` + fingerprint while in flight (expiring with the lease),
//!   `C` + fingerprint + response once completed (expiring with the record's TTL).
//! - `pp:rate:<bucket>:<window start>` = the window's count, expiring one window after its end.
//!
//! Redis expires all of them itself: `purge_expired` has nothing to do and returns 0.
//!
//! # Exactly once
//!
//! A spend is `SET <key> 1 NX EXAT <expiry>`, run by a short script (`SPEND_SCRIPT`) that
//! first refuses an expiry already past by Redis's own clock (Redis would answer `OK` and keep
//! nothing): `OK` is the first spend (`Recorded`), nil an earlier one (`AlreadySpent`). Anything else (an error reply, a broken connection, a timeout)
//! is a `StoreError`: nothing is acknowledged without the server's `OK`. Such an error leaves
//! the outcome unknown (the server may have applied a write whose reply was lost): the token
//! then answers `AlreadySpent` on a retry, so an error can cost a client its token but never
//! lets a token be spent twice.
//!
//! # Pipelining
//!
//! Every request (spends, lookups, idempotency and rate-limit scripts) joins one queue. A caller
//! that finds a free connection in the pool sends everything queued so far as one pipeline on
//! it and hands each caller its own reply; callers that arrive while the pool is busy queue up
//! and go out together in the next pipeline (the group commit of the RocksDB store, with up to
//! `pool` pipelines on the wire at once). Concurrent redemptions therefore share round trips
//! instead of paying one each. `spend_with` (the daemon's redemptions) queues the same way and
//! returns at once: `pool` sender threads, started by its first call, send what is queued
//! whenever a connection is free and answer each spend's callback with its reply, so a daemon
//! parks no thread per redemption in flight. After an error every pooled connection is dropped
//! (when one connection to a server breaks, the others usually have too) and the next request
//! connects afresh: the store resumes by itself once Redis is back. Connections are made on
//! first use, never by `open` (which only checks one connection), and a process that inherits
//! the store through `fork()` opens its own (and its own sender threads): safe for nginx, which
//! forks its workers after loading.
//!
//! # Durability: what a spend survives
//!
//! A spend is acknowledged once the Redis primary that holds its key answered `OK`. That it
//! survives a crash of that primary depends on the server's configuration, not on this client:
//!
//! - `appendonly yes` + `appendfsync always`: Redis fsyncs its append-only file before it sends
//!   the replies of a round of commands, so every acknowledged spend survives a crash of the
//!   process or of the machine. This is the setting to run.
//! - `appendfsync everysec` (Redis's default once AOF is on): a crash (of the machine above
//!   all) loses up to about one second (two when the disk is slow) of acknowledged spends;
//!   those tokens can be spent again.
//! - RDB snapshots only (`appendonly no`): every spend since the last snapshot is lost on any
//!   crash.
//! - Replication is asynchronous. A failover (Sentinel or Cluster promoting a replica) can lose
//!   spends the old primary acknowledged but had not yet sent. This store does not issue `WAIT`
//!   (which narrows that window but, as Redis documents, does not make failover lossless): if
//!   failovers are automatic, a token spent just before one may be spent again once. With
//!   `wait=N` every pipeline that carries a spend ends with `WAIT N MS`: a spend is acknowledged
//!   only if N replicas had it within MS, else it answers an error (-32050) though the primary
//!   holds it (a retry there answers AlreadySpent; a promoted replica may not have it, which is
//!   why it was not acknowledged). A replica promoted after a failover then holds every
//!   acknowledged spend, unless it was one of fewer than N replicas that had it.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use privacypass_core::keys::TokenKeyId;
use privacypass_core::store::SpendCallback;
use privacypass_core::wire::NONCE_LEN;
use privacypass_core::{unix_now, SpendOutcome, SpendStore, StoreError};
use redis::cluster::{ClusterClient, ClusterConnection, ClusterPipeline};
use redis::{Cmd, IntoConnectionInfo, Value};

use crate::state::{Claim, Fingerprint, IdempotencyStore, RateLimitStore};
use crate::OpenError;

/// Connections in the pool unless the URL says `pool=N`.
pub const DEFAULT_POOL: usize = 4;
/// Connect, read and write timeout unless the URL says `timeout_ms=MS`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Spends outlive their key's end of redemption by this much: clocks of the hosts and of Redis
/// may differ by up to this much without a spend expiring while a host still accepts its token.
pub const EXPIRY_MARGIN_SECS: u64 = 86_400;
/// Most commands in one pipeline.
const MAX_PIPELINE: usize = 1024;
const MAX_POOL: usize = 64;
/// Expiries beyond this (year 9999) are kept without expiry: Redis refuses huge `EXAT`s.
const MAX_EXPIRY: u64 = 253_402_300_799;

const SPEND_PREFIX: &str = "pp:spend:";
const END_PREFIX: &str = "pp:end:";
const PROBE_KEY: &str = "pp:probe";
/// Keys asked for per SCAN when a key's spends are moved forward.
const SCAN_COUNT: usize = 1000;
const IDEM_PREFIX: &str = "pp:idem:";
const RATE_PREFIX: &str = "pp:rate:";

const IN_FLIGHT: u8 = b'F';
const COMPLETED: u8 = b'C';

/// KEYS[1] the spend, ARGV[1] when it expires (Unix seconds, or 0 for never). Records the spend
/// unless it exists: `OK` for a first spend, nil for an earlier one. An expiry that is not in
/// the future by Redis's own clock is refused (Redis would answer `OK` to `SET ... EXAT` in the
/// past and keep nothing, so the token could be spent again).
const SPEND_SCRIPT: &str = "\
local at = tonumber(ARGV[1])
if at == 0 then return redis.call('SET', KEYS[1], '1', 'NX') end
if at <= tonumber(redis.call('TIME')[1]) then
  return redis.error_reply('PPEXPIRED spend expiry is not in the future by the clock of Redis')
end
return redis.call('SET', KEYS[1], '1', 'NX', 'EXAT', at)";

/// KEYS[1] the record, ARGV[1] the in-flight value, ARGV[2] the lease in seconds. Claims a free
/// key (nil reply) or returns what holds it.
const CLAIM_SCRIPT: &str = "\
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])";

/// KEYS[1] the record. Deletes it only while it is still a claim in flight.
const RELEASE_SCRIPT: &str = "\
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) == 'F' then return redis.call('DEL', KEYS[1]) end
return 0";

/// KEYS[1] the window's counter, ARGV[1] the hits to add, ARGV[2] when the counter expires.
const RATE_SCRIPT: &str = "\
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return n";

/// The Redis key of a spend.
pub fn spend_key(key_id: &TokenKeyId, nonce: &[u8; NONCE_LEN]) -> String {
    format!(
        "{SPEND_PREFIX}{}:{}",
        hex::encode(key_id),
        hex::encode(nonce)
    )
}

/// A store URL with any password replaced, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

fn store_error(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("redis {context}: {e}"))
}

/// Where the store connects, and how.
enum Target {
    Standalone(redis::Client),
    /// The client, and the URL's `user:password@` (or nothing) for direct connections to
    /// each primary.
    Cluster(ClusterClient, String),
}

enum Conn {
    Standalone(redis::Connection),
    Cluster(Box<ClusterConnection>),
}

#[derive(Default)]
struct Shared {
    /// Requests waiting for a pipeline, with their tickets and whether they are writes that
    /// `wait` must see replicated.
    queue: VecDeque<(u64, Cmd, bool)>,
    /// Replies not yet taken by their callers.
    replies: HashMap<u64, Result<Value, StoreError>>,
    /// How the requests of `spend_with` are answered, by ticket: called with the reply by
    /// whoever sent its pipeline, outside the lock.
    callbacks: HashMap<u64, ReplyCallback>,
    /// Threads of `spend_with` started in this process, and whether they must stop.
    senders: usize,
    stopping: bool,
    next_ticket: u64,
    /// Connections not in use, with the generation they were made in.
    idle: Vec<(u64, Conn)>,
    /// Connections in use (or being made).
    busy: usize,
    /// Bumped by every failed pipeline: connections of older generations are dropped.
    generation: u64,
    /// The process the connections belong to (a child after `fork()` makes its own).
    pid: u32,
    /// Pipelines sent and the commands they carried.
    pipelines: u64,
    commands: u64,
}

/// How a request of `spend_with` is answered.
type ReplyCallback = Box<dyn FnOnce(Result<Value, StoreError>) + Send>;

/// The Redis/Valkey store. Thread-safe; share one per process.
///
/// `spend` and the other calls wait on the calling thread (the first caller to find a free
/// connection sends what is queued). `spend_with` never waits: its first call starts `pool`
/// sender threads, which send whatever is queued whenever a connection is free and answer each
/// callback with its reply, so an async caller parks no thread per spend in flight.
pub struct RedisStore {
    inner: Arc<Inner>,
    /// The sender threads of `spend_with`, with the process that started them.
    senders: Mutex<(u32, Vec<std::thread::JoinHandle<()>>)>,
}

struct Inner {
    target: Target,
    /// The URL without its password, for messages.
    display: String,
    pool: usize,
    timeout: Duration,
    /// `wait=N` and `wait_timeout_ms=MS`: spends acknowledged only once N replicas have them.
    wait: Option<(u64, Duration)>,
    shared: Mutex<Shared>,
    /// Signalled whenever a pipeline finishes.
    finished: Condvar,
    /// Signalled when a request of `spend_with` is queued, and when a pipeline finishes with
    /// requests still queued: wakes a sender thread.
    work: Condvar,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.display)
            .field("pool", &self.inner.pool)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// The options of a store URL (`pool`, `timeout_ms`).
struct Options {
    pool: usize,
    timeout: Duration,
    wait: Option<u64>,
    wait_timeout: Duration,
}

/// How long `WAIT` waits for replicas unless the URL says `wait_timeout_ms=MS`.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_millis(100);

fn invalid(url: &str, reason: impl Into<String>) -> OpenError {
    OpenError::InvalidUrl {
        url: redact(url),
        reason: reason.into(),
    }
}

fn parse_options(url: &str) -> Result<(&str, Options), OpenError> {
    let mut options = Options {
        pool: DEFAULT_POOL,
        timeout: DEFAULT_TIMEOUT,
        wait: None,
        wait_timeout: DEFAULT_WAIT_TIMEOUT,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url, options));
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = value.parse::<u64>().ok();
        match (name, number) {
            ("pool", Some(n)) if (1..=MAX_POOL as u64).contains(&n) => {
                options.pool = n as usize;
            }
            ("pool", _) => return Err(invalid(url, format!("pool must be 1 to {MAX_POOL}"))),
            ("timeout_ms", Some(ms)) if (1..=600_000).contains(&ms) => {
                options.timeout = Duration::from_millis(ms);
            }
            ("timeout_ms", _) => {
                return Err(invalid(url, "timeout_ms must be 1 to 600000 milliseconds"))
            }
            ("wait", Some(n)) if (1..=16).contains(&n) => options.wait = Some(n),
            ("wait", _) => return Err(invalid(url, "wait must be 1 to 16 replicas")),
            ("wait_timeout_ms", Some(ms)) if (1..=60_000).contains(&ms) => {
                options.wait_timeout = Duration::from_millis(ms);
            }
            ("wait_timeout_ms", _) => {
                return Err(invalid(url, "wait_timeout_ms must be 1 to 60000 milliseconds"))
            }
            _ => {
                return Err(invalid(
                    url,
                    format!(
                        "unknown option {name:?} (expected pool=N, timeout_ms=MS, wait=N or wait_timeout_ms=MS)"
                    ),
                ))
            }
        }
    }
    if options.wait.is_some() && options.wait_timeout >= options.timeout {
        return Err(invalid(
            url,
            "wait_timeout_ms must be shorter than timeout_ms (the reply to WAIT must arrive in time)",
        ));
    }
    Ok((base, options))
}

/// `redis://` address parsing through the redis crate, with its (secret-free) reason on failure.
fn connection_info(url: &str, address: &str) -> Result<redis::ConnectionInfo, OpenError> {
    let info = address
        .into_connection_info()
        .map_err(|e| invalid(url, e.to_string()))?;
    match info.addr() {
        redis::ConnectionAddr::Tcp(..) => Ok(info),
        _ => Err(invalid(url, "only TCP addresses are supported")),
    }
}

impl RedisStore {
    /// Opens the store a `redis://` or `redis+cluster://` URL names and checks that one
    /// connection can be made (then closes it: connections are made on first use).
    pub fn open(url: &str) -> Result<Self, OpenError> {
        let (base, options) = parse_options(url)?;
        let target = if let Some(rest) = base.strip_prefix("redis+cluster://") {
            if options.wait.is_some() {
                return Err(invalid(
                    url,
                    "wait is for a standalone primary with replicas, not for redis+cluster://",
                ));
            }
            let (client, userinfo) = cluster_client(url, rest, options.timeout)?;
            Target::Cluster(client, userinfo)
        } else if base.starts_with("redis://") {
            let info = connection_info(url, base)?;
            Target::Standalone(redis::Client::open(info).map_err(|e| invalid(url, e.to_string()))?)
        } else {
            return Err(OpenError::UnsupportedUrl(redact(url)));
        };
        let store = Inner {
            target,
            display: redact(url),
            pool: options.pool,
            timeout: options.timeout,
            wait: options.wait.map(|n| (n, options.wait_timeout)),
            shared: Mutex::new(Shared {
                pid: std::process::id(),
                ..Shared::default()
            }),
            finished: Condvar::new(),
            work: Condvar::new(),
        };
        let mut probe = store.connect()?;
        let pong = match &mut probe {
            Conn::Standalone(c) => redis::cmd("PING").query::<Value>(c),
            Conn::Cluster(c) => redis::cmd("PING").query::<Value>(c.as_mut()),
        };
        pong.map_err(|e| store_error("ping", e))?;
        Ok(RedisStore {
            inner: Arc::new(store),
            senders: Mutex::new((std::process::id(), Vec::new())),
        })
    }

    /// Pipelines sent so far and the commands they carried: how much callers shared round
    /// trips.
    pub fn pipeline_stats(&self) -> Result<(u64, u64), StoreError> {
        let shared = self.inner.lock()?;
        Ok((shared.pipelines, shared.commands))
    }

    /// Starts the sender threads of `spend_with` unless this process runs them; Err when not
    /// one runs.
    fn ensure_senders(&self, shared: &mut Shared) -> Result<(), StoreError> {
        if shared.senders >= self.inner.pool {
            return Ok(());
        }
        let Ok(mut senders) = self.senders.lock() else {
            return Err(StoreError("redis store lock poisoned".into()));
        };
        let pid = std::process::id();
        if senders.0 != pid {
            // Threads of the parent before fork(): not in this process, never to be joined.
            std::mem::forget(std::mem::take(&mut senders.1));
            senders.0 = pid;
        }
        while shared.senders < self.inner.pool {
            let inner = self.inner.clone();
            match std::thread::Builder::new()
                .name("privacypass-redis".into())
                .spawn(move || inner.run_sender())
            {
                Ok(handle) => senders.1.push(handle),
                Err(_) if shared.senders > 0 => break,
                Err(e) => return Err(store_error("start a sender thread", e)),
            }
            shared.senders += 1;
        }
        Ok(())
    }
}

impl Drop for RedisStore {
    /// Stops the sender threads once they have sent what is queued.
    fn drop(&mut self) {
        if let Ok(mut shared) = self.inner.shared.lock() {
            shared.stopping = true;
        }
        self.inner.work.notify_all();
        let (pid, handles) = match self.senders.lock() {
            Ok(mut senders) => (senders.0, std::mem::take(&mut senders.1)),
            Err(poisoned) => {
                let mut senders = poisoned.into_inner();
                (senders.0, std::mem::take(&mut senders.1))
            }
        };
        if pid != std::process::id() {
            std::mem::forget(handles);
            return;
        }
        let current = std::thread::current().id();
        for handle in handles {
            // The last handle dropped by a callback on a sender thread: that one ends by itself.
            if handle.thread().id() != current {
                let _ = handle.join();
            }
        }
    }
}

impl Inner {
    fn connect(&self) -> Result<Conn, StoreError> {
        let timeout = Some(self.timeout);
        match &self.target {
            Target::Standalone(client) => {
                let conn = client
                    .get_connection_with_timeout(self.timeout)
                    .map_err(|e| store_error("connect", e))?;
                conn.set_read_timeout(timeout)
                    .and_then(|()| conn.set_write_timeout(timeout))
                    .map_err(|e| store_error("connect", e))?;
                Ok(Conn::Standalone(conn))
            }
            Target::Cluster(client, _) => {
                let conn = client
                    .get_connection()
                    .map_err(|e| store_error("connect to cluster", e))?;
                conn.set_read_timeout(timeout)
                    .and_then(|()| conn.set_write_timeout(timeout))
                    .map_err(|e| store_error("connect to cluster", e))?;
                Ok(Conn::Cluster(Box::new(conn)))
            }
        }
    }

    /// A direct connection to each primary (the one server when standalone), for commands
    /// that see only the keys of the node they run on (SCAN).
    fn primaries(&self) -> Result<Vec<redis::Connection>, StoreError> {
        let client = match &self.target {
            Target::Standalone(client) => client,
            Target::Cluster(client, userinfo) => {
                let mut conn = client
                    .get_connection()
                    .map_err(|e| store_error("connect to cluster", e))?;
                let nodes: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query(&mut conn)
                    .map_err(|e| store_error("cluster nodes", e))?;
                let mut conns = Vec::new();
                for line in nodes.lines() {
                    let fields: Vec<&str> = line.split(' ').collect();
                    let (Some(address), Some(flags)) = (fields.get(1), fields.get(2)) else {
                        continue;
                    };
                    if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                        continue;
                    }
                    let host = address.split('@').next().unwrap_or_default();
                    let node = redis::Client::open(format!("redis://{userinfo}{host}"))
                        .map_err(|e| store_error("primary address", e))?;
                    conns.push(self.direct(&node)?);
                }
                return Ok(conns);
            }
        };
        Ok(vec![self.direct(client)?])
    }

    fn direct(&self, client: &redis::Client) -> Result<redis::Connection, StoreError> {
        let conn = client
            .get_connection_with_timeout(self.timeout)
            .map_err(|e| store_error("connect", e))?;
        let timeout = Some(self.timeout);
        conn.set_read_timeout(timeout)
            .and_then(|()| conn.set_write_timeout(timeout))
            .map_err(|e| store_error("connect", e))?;
        Ok(conn)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Shared>, StoreError> {
        self.shared
            .lock()
            .map_err(|_| StoreError("redis store lock poisoned".into()))
    }

    /// Runs one command, pipelined with whatever other callers are running at the same time.
    fn call(&self, cmd: Cmd) -> Result<Value, StoreError> {
        self.call_as(cmd, false)
    }

    /// `call`; with `replicated`, under the URL's `wait=N` the reply stands only once `WAIT`
    /// has seen the write on N replicas (else an error: not acknowledged).
    fn call_as(&self, cmd: Cmd, replicated: bool) -> Result<Value, StoreError> {
        let mut shared = self.lock()?;
        let ticket = queue(&mut shared, cmd, replicated);
        loop {
            if let Some(reply) = shared.replies.remove(&ticket) {
                return reply;
            }
            if !shared.queue.is_empty() && shared.busy < self.pool {
                shared = self.send_queued(shared)?;
                continue;
            }
            shared = self
                .finished
                .wait(shared)
                .map_err(|_| StoreError("redis store lock poisoned".into()))?;
        }
    }

    /// A sender thread of `spend_with`: sends what is queued whenever a connection is free, until
    /// the store is dropped and nothing is queued.
    fn run_sender(&self) {
        let Ok(mut shared) = self.lock() else { return };
        loop {
            if !shared.queue.is_empty() && shared.busy < self.pool {
                shared = match self.send_queued(shared) {
                    Ok(shared) => shared,
                    Err(_) => return,
                };
                continue;
            }
            if shared.stopping && shared.queue.is_empty() {
                return;
            }
            shared = match self.work.wait(shared) {
                Ok(shared) => shared,
                Err(_) => return,
            };
        }
    }

    /// Sends the queued requests as one pipeline on a pooled connection, with the lock released
    /// while they are on the wire, and files each reply under its ticket (or answers its
    /// callback, outside the lock).
    fn send_queued<'a>(
        &'a self,
        mut shared: MutexGuard<'a, Shared>,
    ) -> Result<MutexGuard<'a, Shared>, StoreError> {
        let count = shared.queue.len().min(MAX_PIPELINE);
        let mut tickets = Vec::with_capacity(count);
        let mut cmds = Vec::with_capacity(count);
        let mut replicated = Vec::with_capacity(count);
        for (ticket, cmd, r) in shared.queue.drain(..count) {
            tickets.push(ticket);
            cmds.push(cmd);
            replicated.push(r);
        }
        let generation = shared.generation;
        let mut conn = None;
        while let Some((made_in, c)) = shared.idle.pop() {
            if made_in == generation {
                conn = Some(c);
                break;
            }
        }
        shared.busy += 1;
        shared.pipelines += 1;
        shared.commands += cmds.len() as u64;
        drop(shared);

        let outcome = catch_unwind(AssertUnwindSafe(|| self.run(conn, &cmds, &replicated)))
            .unwrap_or_else(|_| Err(StoreError("redis client panicked".into())));

        let mut shared = self.lock()?;
        shared.busy -= 1;
        let replies = match outcome {
            Ok((conn, replies)) => {
                if shared.generation == generation {
                    shared.idle.push((generation, conn));
                }
                replies
            }
            Err(e) => {
                shared.generation += 1;
                shared.idle.clear();
                vec![Err(e); tickets.len()]
            }
        };
        let mut answers = Vec::new();
        for (ticket, reply) in tickets.into_iter().zip(replies) {
            match shared.callbacks.remove(&ticket) {
                Some(callback) => answers.push((callback, reply)),
                None => {
                    shared.replies.insert(ticket, reply);
                }
            }
        }
        self.finished.notify_all();
        if !shared.queue.is_empty() {
            self.work.notify_one();
        }
        if answers.is_empty() {
            return Ok(shared);
        }
        // A callback may call the store: none runs under the lock.
        drop(shared);
        for (callback, reply) in answers {
            callback(reply);
        }
        self.lock()
    }

    /// One pipeline on `conn` (a new connection when None). Server error replies fail only
    /// their own command; a connection error fails them all.
    fn run(
        &self,
        conn: Option<Conn>,
        cmds: &[Cmd],
        replicated: &[bool],
    ) -> Result<(Conn, Vec<Result<Value, StoreError>>), StoreError> {
        let mut conn = match conn {
            Some(conn) => conn,
            None => self.connect()?,
        };
        // Under `wait=N`, a pipeline that carries a spend ends with WAIT, which answers how
        // many replicas have every write made before it on this connection.
        let wait = self
            .wait
            .filter(|_| replicated.iter().any(|r| *r))
            .map(|(replicas, timeout)| (replicas, timeout.as_millis() as u64));
        let mut values: Vec<Value> = match &mut conn {
            Conn::Standalone(c) => {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                if let Some((replicas, timeout_ms)) = wait {
                    pipe.cmd("WAIT").arg(replicas).arg(timeout_ms);
                }
                pipe.query(c)
            }
            Conn::Cluster(c) => {
                let mut pipe = ClusterPipeline::with_capacity(cmds.len());
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                pipe.query(c.as_mut())
            }
        }
        .map_err(|e| store_error("request", e))?;
        let confirmed = match wait {
            None => None,
            Some((replicas, _)) => match values.pop() {
                Some(Value::Int(n)) => Some((u64::try_from(n).unwrap_or(0), replicas)),
                _ => Some((0, replicas)),
            },
        };
        if values.len() != cmds.len() {
            return Err(StoreError(format!(
                "redis answered {} replies to {} commands",
                values.len(),
                cmds.len()
            )));
        }
        let replies = values
            .into_iter()
            .zip(replicated)
            .map(|(v, replicated)| match v {
                Value::ServerError(e) => {
                    Err(store_error("error reply", e.details().unwrap_or(e.code())))
                }
                // Written on the primary, but not on enough replicas to be acknowledged: the
                // spend stands there (a retry answers AlreadySpent while that primary serves).
                _ if *replicated && confirmed.is_some_and(|(got, want)| got < want) => {
                    let (got, want) = confirmed.unwrap_or_default();
                    Err(StoreError(format!(
                        "redis: WAIT saw the spend on {got} of {want} replicas; not acknowledged"
                    )))
                }
                v => Ok(v),
            })
            .collect();
        Ok((conn, replies))
    }
}

/// Queues a request and returns its ticket. In a child after `fork()` the parent's connections,
/// requests and sender threads are not this process's: they are forgotten first.
fn queue(shared: &mut Shared, cmd: Cmd, replicated: bool) -> u64 {
    let pid = std::process::id();
    if shared.pid != pid {
        *shared = Shared {
            pid,
            next_ticket: shared.next_ticket,
            ..Shared::default()
        };
    }
    let ticket = shared.next_ticket;
    shared.next_ticket += 1;
    shared.queue.push_back((ticket, cmd, replicated));
    ticket
}

/// A spend's reply as its outcome.
fn spend_outcome(reply: Value) -> Result<SpendOutcome, StoreError> {
    match reply {
        Value::Okay => Ok(SpendOutcome::Recorded),
        Value::SimpleString(s) if s == "OK" => Ok(SpendOutcome::Recorded),
        Value::Nil => Ok(SpendOutcome::AlreadySpent),
        other => Err(unexpected("SET NX", &other)),
    }
}

fn spend_command(key_id: &TokenKeyId, nonce: &[u8; NONCE_LEN], expires_at: u64) -> Cmd {
    let mut cmd = eval(SPEND_SCRIPT, spend_key(key_id, nonce));
    cmd.arg(spend_expiry(expires_at));
    cmd
}

fn cluster_client(
    url: &str,
    rest: &str,
    timeout: Duration,
) -> Result<(ClusterClient, String), OpenError> {
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    if !matches!(path, "" | "/" | "/0") {
        return Err(invalid(url, "a cluster has only database 0"));
    }
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let mut nodes = Vec::new();
    for host in hosts.split(',') {
        if host.is_empty() {
            return Err(invalid(url, "empty node in the cluster's node list"));
        }
        nodes.push(connection_info(url, &format!("redis://{userinfo}{host}"))?);
    }
    let client = ClusterClient::builder(nodes)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        // Redirections (MOVED, ASK) and a short wait through a failover; no long retry loops.
        .retries(2)
        .build()
        .map_err(|e| invalid(url, e.to_string()))?;
    Ok((client, userinfo.to_owned()))
}

/// An error for a reply of the wrong type; names the type only (a stored response is no
/// business of a log line).
fn unexpected(what: &str, value: &Value) -> StoreError {
    let kind = match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a bulk string",
        Value::Array(_) | Value::Set(_) | Value::Map(_) => "an aggregate",
        Value::SimpleString(_) | Value::Okay => "a status",
        _ => "another type",
    };
    StoreError(format!("redis: unexpected reply to {what}: {kind}"))
}

impl SpendStore for RedisStore {
    fn spend(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
    ) -> Result<SpendOutcome, StoreError> {
        let cmd = spend_command(key_id, nonce, expires_at);
        spend_outcome(self.inner.call_as(cmd, true)?)
    }

    /// Queues the spend and returns at once; `done` is called with its reply by the thread that
    /// sent its pipeline (a sender thread of the store, or a caller of `spend` that found a
    /// connection free).
    fn spend_with(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
        done: SpendCallback,
    ) {
        let mut shared = match self.inner.lock() {
            Ok(shared) => shared,
            Err(e) => return done(Err(e)),
        };
        let ticket = queue(&mut shared, spend_command(key_id, nonce, expires_at), true);
        if let Err(e) = self.ensure_senders(&mut shared) {
            shared.queue.retain(|(t, _, _)| *t != ticket);
            drop(shared);
            return done(Err(e));
        }
        shared.callbacks.insert(
            ticket,
            Box::new(move |reply| done(reply.and_then(spend_outcome))),
        );
        drop(shared);
        self.inner.work.notify_one();
    }

    fn spend_with_returns_at_once(&self) -> bool {
        true
    }

    fn is_spent(&self, key_id: &TokenKeyId, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(spend_key(key_id, nonce));
        match self.inner.call(cmd)? {
            Value::Int(n) => Ok(n > 0),
            other => Err(unexpected("EXISTS", &other)),
        }
    }

    /// Moves the expiry of every spend of `key_id` forward to `until` plus the margin when
    /// `until` is later than the end recorded for the key (`pp:end:<key id>`), then records
    /// it. The spends are found with SCAN on every primary and moved with `EXPIREAT ... GT`;
    /// the end is written last, so an interrupted move is done again on the next call.
    fn retain_until(&self, key_id: &TokenKeyId, until: u64) -> Result<(), StoreError> {
        let end_key = format!("{END_PREFIX}{}", hex::encode(key_id));
        let mut get = redis::cmd("GET");
        get.arg(&end_key);
        let recorded = match self.inner.call(get)? {
            Value::Nil => None,
            Value::BulkString(b) => std::str::from_utf8(&b).ok().and_then(|t| t.parse().ok()),
            other => return Err(unexpected("GET", &other)),
        };
        if recorded.is_some_and(|end: u64| end >= until) {
            return Ok(());
        }
        let expiry = spend_expiry(until);
        let pattern = format!("{SPEND_PREFIX}{}:*", hex::encode(key_id));
        for mut conn in self.inner.primaries()? {
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query(&mut conn)
                    .map_err(|e| store_error("scan spends", e))?;
                if !keys.is_empty() {
                    let mut pipe = redis::pipe();
                    for key in &keys {
                        if expiry == 0 {
                            pipe.cmd("PERSIST").arg(key).ignore();
                        } else {
                            pipe.cmd("EXPIREAT").arg(key).arg(expiry).arg("GT").ignore();
                        }
                    }
                    pipe.query::<()>(&mut conn)
                        .map_err(|e| store_error("move spends forward", e))?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        let mut set = redis::cmd("SET");
        set.arg(&end_key).arg(until);
        if expiry != 0 {
            set.arg("EXAT").arg(expiry);
        }
        match self.inner.call(set)? {
            Value::Okay => Ok(()),
            Value::SimpleString(s) if s == "OK" => Ok(()),
            other => Err(unexpected("SET", &other)),
        }
    }

    /// Redis expires spends itself (each key carries its expiry): nothing to do.
    fn purge_expired(&self, _now: u64) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// A write that expires by itself, through the pipeline like any spend.
    fn probe_write(&self) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(PROBE_KEY).arg(1).arg("EX").arg(60);
        match self.inner.call(cmd)? {
            Value::Okay => Ok(()),
            Value::SimpleString(s) if s == "OK" => Ok(()),
            other => Err(unexpected("SET", &other)),
        }
    }
}

/// The `EXAT` of a spend whose key is redeemable until `until`: the margin added, or 0 (no
/// expiry) past what Redis accepts.
fn spend_expiry(until: u64) -> u64 {
    let expiry = until.saturating_add(EXPIRY_MARGIN_SECS);
    if expiry <= MAX_EXPIRY {
        expiry
    } else {
        0
    }
}

fn idem_key(key: &str) -> String {
    format!("{IDEM_PREFIX}{key}")
}

fn eval(script: &str, key: String) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(1).arg(key);
    cmd
}

impl IdempotencyStore for RedisStore {
    fn claim(
        &self,
        key: &str,
        fingerprint: &Fingerprint,
        lease_secs: u64,
    ) -> Result<Claim, StoreError> {
        let mut in_flight = vec![IN_FLIGHT];
        in_flight.extend_from_slice(fingerprint);
        let mut cmd = eval(CLAIM_SCRIPT, idem_key(key));
        cmd.arg(in_flight).arg(lease_secs.max(1));
        match self.inner.call(cmd)? {
            Value::Nil => Ok(Claim::Claimed),
            Value::BulkString(record) => match record.split_first() {
                Some((&IN_FLIGHT, _)) => Ok(Claim::InFlight),
                Some((&COMPLETED, rest)) if rest.len() >= fingerprint.len() => {
                    let (stored, response) = rest.split_at(fingerprint.len());
                    if stored == fingerprint {
                        Ok(Claim::Replay(response.to_vec()))
                    } else {
                        Ok(Claim::Mismatch)
                    }
                }
                _ => Err(StoreError(
                    "redis: unrecognized Idempotency-Key record".into(),
                )),
            },
            other => Err(unexpected("claim", &other)),
        }
    }

    fn complete(
        &self,
        key: &str,
        fingerprint: &Fingerprint,
        response: &[u8],
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        let cmd = if ttl_secs == 0 {
            // Kept for no time at all: nothing to keep.
            let mut cmd = redis::cmd("DEL");
            cmd.arg(idem_key(key));
            cmd
        } else {
            let mut record = Vec::with_capacity(1 + fingerprint.len() + response.len());
            record.push(COMPLETED);
            record.extend_from_slice(fingerprint);
            record.extend_from_slice(response);
            let mut cmd = redis::cmd("SET");
            cmd.arg(idem_key(key)).arg(record).arg("EX").arg(ttl_secs);
            cmd
        };
        match self.inner.call(cmd)? {
            Value::Okay | Value::Int(_) => Ok(()),
            Value::SimpleString(s) if s == "OK" => Ok(()),
            other => Err(unexpected("complete", &other)),
        }
    }

    fn release(&self, key: &str) -> Result<(), StoreError> {
        match self.inner.call(eval(RELEASE_SCRIPT, idem_key(key)))? {
            Value::Int(_) => Ok(()),
            other => Err(unexpected("release", &other)),
        }
    }
}

impl RateLimitStore for RedisStore {
    fn add(
        &self,
        bucket: &str,
        window_start: u64,
        window_secs: u64,
        hits: u64,
    ) -> Result<u64, StoreError> {
        let hits =
            i64::try_from(hits).map_err(|_| StoreError("rate-limit hits too large".into()))?;
        // Kept one window past the window's end (clock skew between hosts), and for at least a
        // window from now.
        let window_secs = window_secs.max(1);
        let expires_at = window_start
            .saturating_add(window_secs.saturating_mul(2))
            .max(unix_now().saturating_add(window_secs))
            .min(MAX_EXPIRY);
        let mut cmd = eval(RATE_SCRIPT, format!("{RATE_PREFIX}{bucket}:{window_start}"));
        cmd.arg(hits).arg(expires_at);
        match self.inner.call(cmd)? {
            Value::Int(n) => u64::try_from(n).map_err(|_| unexpected("INCRBY", &Value::Int(n))),
            other => Err(unexpected("INCRBY", &other)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("redis://:s3cret@h:1/0?pool=2"),
            "redis://***@h:1/0?pool=2"
        );
        assert_eq!(
            redact("redis+cluster://u:p@a:1,b:2"),
            "redis+cluster://***@a:1,b:2"
        );
        assert_eq!(redact("redis://h:1/0"), "redis://h:1/0");
    }

    #[test]
    fn refuses_bad_urls_without_connecting() {
        for url in [
            "redis://:s3cret@h:1/0?pool=0",
            "redis://:s3cret@h:1/0?pool=x",
            "redis://:s3cret@h:1/0?timeout_ms=0",
            "redis://:s3cret@h:1/0?color=blue",
            "redis://:s3cret@h:1/notadb",
            "redis://",
            "redis+cluster://:s3cret@a:1,,b:2",
            "redis+cluster://:s3cret@a:1/3",
        ] {
            let err = RedisStore::open(url).unwrap_err();
            assert!(matches!(err, OpenError::InvalidUrl { .. }), "{url}: {err}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn spend_keys_spread_over_slots() {
        let key = spend_key(&[0xab; 32], &[0x01; 32]);
        assert_eq!(
            key,
            format!("pp:spend:{}:{}", "ab".repeat(32), "01".repeat(32))
        );
        assert!(!key.contains('{'), "no hash tag");
    }
}
