//! The Redis store against real `redis-server` processes that each test starts on 127.0.0.1 in
//! a temporary directory (Debian's `redis-server` package, which `make deps` installs): exactly
//! once under contention, idempotency records, rate-limit counters, timeouts, kill -9 of Redis
//! mid-load, and a 3-node Redis Cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;
#[path = "../../tests/support/spends.rs"]
mod spends;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use privacypass_core::unix_now;
use privacypass_core::{SpendOutcome, SpendStore};
use privacypass_stores::redis::{spend_key, RedisStore, EXPIRY_MARGIN_SECS};
use privacypass_stores::{Claim, IdempotencyStore, OpenError, RateLimitStore};
use redis_server::{free_port, Cluster, RedisServer};
use spends::{exactly_once_under_contention, spend_with_answers_once_per_token};

fn open(url: &str) -> Arc<RedisStore> {
    Arc::new(RedisStore::open(url).unwrap())
}

fn nonce(thread: u8, i: u32) -> [u8; 32] {
    let mut nonce = [thread; 32];
    nonce[..4].copy_from_slice(&i.to_be_bytes());
    nonce
}

/// 16 threads spend distinct nonces: all Recorded, all spent afterwards; prints the rate.
fn distinct_spends_are_all_recorded(store: &Arc<RedisStore>, label: &str) {
    const THREADS: u8 = 16;
    const EACH: u32 = 500;
    let started = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    assert_eq!(
                        store.spend(&[4; 32], &nonce(t, i), u64::MAX).unwrap(),
                        SpendOutcome::Recorded
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = started.elapsed();
    let (pipelines, commands) = store.pipeline_stats().unwrap();
    let total = u64::from(THREADS) * u64::from(EACH);
    eprintln!(
        "{label}: {total} spends from {THREADS} threads in {elapsed:.2?} ({:.0}/s), \
         {commands} commands in {pipelines} pipelines",
        total as f64 / elapsed.as_secs_f64()
    );
    assert!(
        pipelines < commands,
        "concurrent spends shared no pipeline ({commands} commands, {pipelines} pipelines)"
    );
    for t in 0..THREADS {
        for i in 0..EACH {
            assert!(store.is_spent(&[4; 32], &nonce(t, i)).unwrap());
        }
    }
    assert!(!store.is_spent(&[4; 32], &nonce(THREADS, 0)).unwrap());
}

#[test]
fn concurrent_spends_of_one_token_succeed_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path(), free_port());
    exactly_once_under_contention(&open(&server.url()));
}

#[test]
fn concurrent_distinct_spends_are_all_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path(), free_port());
    distinct_spends_are_all_recorded(&open(&server.url()), "standalone");
}

#[test]
fn spends_use_the_documented_keys_database_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path(), free_port());
    let store = open(&format!("redis://127.0.0.1:{}/3?pool=2", server.port));
    let expires_at = unix_now() + 1000;
    assert_eq!(
        store.spend(&[0xab; 32], &[1; 32], expires_at).unwrap(),
        SpendOutcome::Recorded
    );
    assert_eq!(
        store.spend(&[0xab; 32], &[1; 32], expires_at).unwrap(),
        SpendOutcome::AlreadySpent
    );
    let key = spend_key(&[0xab; 32], &[1; 32]);
    assert_eq!(
        key,
        format!("pp:spend:{}:{}", "ab".repeat(32), "01".repeat(32))
    );
    assert_eq!(server.cli(&["-n", "3", "get", &key]).trim(), "1");
    assert_eq!(
        server.cli(&["-n", "0", "dbsize"]).trim(),
        "0",
        "database 3 only"
    );
    let expire_time: u64 = server
        .cli(&["-n", "3", "expiretime", &key])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(expire_time, expires_at + EXPIRY_MARGIN_SECS);
    // A key without an end keeps its spends without expiry.
    store.spend(&[0xab; 32], &[2; 32], u64::MAX).unwrap();
    let ttl = server.cli(&["-n", "3", "ttl", &spend_key(&[0xab; 32], &[2; 32])]);
    assert_eq!(ttl.trim(), "-1");
    assert_eq!(store.purge_expired(u64::MAX).unwrap(), 0, "Redis expires");
    assert!(store.is_spent(&[0xab; 32], &[2; 32]).unwrap());
}

#[test]
fn passwords_are_used_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = RedisServer::start_with(dir.path(), port, &["--requirepass", "s3cret-pw"]);
    let store = open(&format!("redis://:s3cret-pw@127.0.0.1:{port}/0"));
    assert_eq!(
        store.spend(&[1; 32], &[1; 32], u64::MAX).unwrap(),
        SpendOutcome::Recorded
    );
    assert!(!format!("{store:?}").contains("s3cret"));
    let err = RedisStore::open(&format!("redis://:wrong-pw@127.0.0.1:{port}/0")).unwrap_err();
    assert!(!err.to_string().contains("wrong-pw"), "{err}");
    let err = RedisStore::open(&format!("redis://127.0.0.1:{port}/0")).unwrap_err();
    assert!(matches!(err, OpenError::Store(_)), "{err}");
}

#[test]
fn unreachable_redis_fails_to_open() {
    let port = free_port();
    let err = RedisStore::open(&format!("redis://127.0.0.1:{port}/0")).unwrap_err();
    assert!(matches!(err, OpenError::Store(_)), "{err}");
    let err = RedisStore::open(&format!("redis+cluster://127.0.0.1:{port}")).unwrap_err();
    assert!(matches!(err, OpenError::Store(_)), "{err}");
    assert!(matches!(
        privacypass_stores::open(&format!("redis://127.0.0.1:{port}/0")),
        Err(OpenError::Store(_))
    ));
}

#[test]
fn a_stalled_redis_times_out_and_the_store_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path(), free_port());
    let store = open(&format!(
        "redis://127.0.0.1:{}/0?timeout_ms=300",
        server.port
    ));
    store.spend(&[1; 32], &[1; 32], u64::MAX).unwrap();
    server.signal("-STOP");
    let started = Instant::now();
    let result = store.spend(&[1; 32], &[2; 32], u64::MAX);
    let waited = started.elapsed();
    server.signal("-CONT");
    assert!(result.is_err(), "{result:?}");
    assert!(
        waited < Duration::from_millis(1500),
        "timed out after {waited:?}"
    );
    // (The timed-out SET may still be applied once Redis resumes: its outcome is unknown.)
    assert_eq!(
        store.spend(&[1; 32], &[3; 32], u64::MAX).unwrap(),
        SpendOutcome::Recorded
    );
}

/// `spend_with` returns before its answer: it sends nothing on the calling thread. While Redis is
/// stopped the call returns with no answer yet, the answer comes later (a timeout error); once
/// Redis resumes, spends through it are recorded once, and dropping the store answers what it
/// had queued.
#[test]
fn spend_with_never_waits_for_redis_and_answers_every_spend_once() {
    use std::sync::mpsc;
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path(), free_port());
    let store = open(&format!(
        "redis://127.0.0.1:{}/0?timeout_ms=300",
        server.port
    ));
    assert!(store.is_remote() && store.spend_with_returns_at_once());
    spend_with_answers_once_per_token(&store);
    let (pipelines, commands) = store.pipeline_stats().unwrap();
    assert!(
        pipelines < commands,
        "{commands} commands in {pipelines} pipelines"
    );

    server.signal("-STOP");
    let (tx, rx) = mpsc::channel();
    store.spend_with(
        &[8; 32],
        &[1; 32],
        u64::MAX,
        Box::new(move |outcome| tx.send(outcome).unwrap()),
    );
    assert_eq!(
        rx.try_recv().unwrap_err(),
        mpsc::TryRecvError::Empty,
        "spend_with waited for the stopped Redis"
    );
    let answer = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    server.signal("-CONT");
    assert!(answer.is_err(), "{answer:?}");

    let (tx, rx) = mpsc::channel();
    for i in 0..100u32 {
        let tx = tx.clone();
        store.spend_with(
            &[8; 32],
            &nonce(9, i),
            u64::MAX,
            Box::new(move |outcome| tx.send(outcome).unwrap()),
        );
    }
    drop(tx);
    drop(store);
    let answers: Vec<_> = rx.iter().collect();
    assert_eq!(
        answers.len(),
        100,
        "dropping the store answers what it had queued"
    );
    assert!(
        answers.iter().all(|a| *a == Ok(SpendOutcome::Recorded)),
        "{answers:?}"
    );
    let store = open(&server.url());
    assert!((0..100).all(|i| store.is_spent(&[8; 32], &nonce(9, i)).unwrap()));
}

fn idempotency_and_rate_limits(store: &RedisStore) {
    let (a, b) = ([1u8; 32], [2u8; 32]);
    assert_eq!(store.claim("k", &a, 60).unwrap(), Claim::Claimed);
    assert_eq!(store.claim("k", &a, 60).unwrap(), Claim::InFlight);
    assert_eq!(store.claim("k", &b, 60).unwrap(), Claim::InFlight);
    store.complete("k", &a, b"first response", 60).unwrap();
    assert_eq!(
        store.claim("k", &a, 60).unwrap(),
        Claim::Replay(b"first response".to_vec())
    );
    assert_eq!(store.claim("k", &b, 60).unwrap(), Claim::Mismatch);
    // Releasing a completed record keeps it; releasing a claim frees the key.
    store.release("k").unwrap();
    assert_eq!(
        store.claim("k", &a, 60).unwrap(),
        Claim::Replay(b"first response".to_vec())
    );
    assert_eq!(store.claim("other", &b, 60).unwrap(), Claim::Claimed);
    store.release("other").unwrap();
    assert_eq!(store.claim("other", &b, 60).unwrap(), Claim::Claimed);
    // An empty response replays as empty.
    store.complete("empty", &a, b"", 60).unwrap();
    assert_eq!(store.claim("empty", &a, 60).unwrap(), Claim::Replay(vec![]));

    let now = unix_now();
    let window = now - now % 60;
    assert_eq!(store.add("api-key-1", window, 60, 1).unwrap(), 1);
    assert_eq!(store.add("api-key-1", window, 60, 3).unwrap(), 4);
    assert_eq!(store.add("api-key-2", window, 60, 1).unwrap(), 1);
    assert_eq!(store.add("api-key-1", window + 60, 60, 1).unwrap(), 1);
    assert_eq!(store.add("api-key-1", window, 60, 1).unwrap(), 5);
}

#[test]
fn idempotency_records_and_rate_limit_counters() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path(), free_port());
    let store = open(&server.url());
    idempotency_and_rate_limits(&store);

    // Stored under the documented keys, with expiries.
    let now = unix_now();
    let window = now - now % 60;
    let ttl: i64 = server
        .cli(&["ttl", &format!("pp:rate:api-key-1:{window}")])
        .trim()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&ttl), "counter ttl {ttl}");
    let ttl: i64 = server.cli(&["ttl", "pp:idem:k"]).trim().parse().unwrap();
    assert!((1..=60).contains(&ttl), "record ttl {ttl}");

    // A lease that is neither completed nor released lapses.
    assert_eq!(store.claim("lease", &[1; 32], 1).unwrap(), Claim::Claimed);
    assert_eq!(store.claim("lease", &[1; 32], 1).unwrap(), Claim::InFlight);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match store.claim("lease", &[1; 32], 60).unwrap() {
            Claim::Claimed => break,
            Claim::InFlight => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(Instant::now() < deadline, "lease did not lapse");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A record kept for no time is gone at once.
    assert_eq!(store.claim("brief", &[1; 32], 60).unwrap(), Claim::Claimed);
    store.complete("brief", &[1; 32], b"x", 0).unwrap();
    assert_eq!(store.claim("brief", &[2; 32], 60).unwrap(), Claim::Claimed);
}

#[test]
fn open_backends_shares_one_redis_for_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path(), free_port());
    let first = privacypass_stores::open_backends(&server.url()).unwrap();
    let second = privacypass_stores::open_backends(&server.url()).unwrap();
    assert_eq!(
        first.spends.spend(&[1; 32], &[1; 32], u64::MAX).unwrap(),
        SpendOutcome::Recorded
    );
    assert_eq!(
        second.spends.spend(&[1; 32], &[1; 32], u64::MAX).unwrap(),
        SpendOutcome::AlreadySpent,
        "a second host sees the first host's spend"
    );
    assert_eq!(
        first.idempotency.claim("k", &[1; 32], 60).unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        second.idempotency.claim("k", &[1; 32], 60).unwrap(),
        Claim::InFlight
    );
    let window = unix_now() / 60 * 60;
    assert_eq!(first.rate_limits.add("b", window, 60, 1).unwrap(), 1);
    assert_eq!(second.rate_limits.add("b", window, 60, 1).unwrap(), 2);
}

/// kill -9 of Redis while 16 threads spend distinct nonces: every spend begun after the kill
/// fails; after a restart on the same directory and port every acknowledged spend is still
/// there and the same store serves again without being reopened.
///
/// This proves that nothing is acknowledged before Redis has written it to its AOF and that the
/// store reconnects; it cannot prove the fsync of `appendfsync always` (a killed process leaves
/// its writes in the page cache: only a power loss tells `always` from `everysec`).
#[test]
fn kill_9_of_redis_mid_load_loses_no_acknowledged_spend() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = RedisServer::start(dir.path(), port);
    let store = open(&format!("{}?timeout_ms=1000", server.url()));

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let acked_count = Arc::new(AtomicUsize::new(0));
    let killing = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let after_kill = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..16u8)
        .map(|t| {
            let (store, acknowledged, acked_count, killing, killed, after_kill) = (
                store.clone(),
                acknowledged.clone(),
                acked_count.clone(),
                killing.clone(),
                killed.clone(),
                after_kill.clone(),
            );
            std::thread::spawn(move || {
                let mut attempts_after_kill = 0;
                for i in 0.. {
                    let begun_after_kill = killed.load(Ordering::SeqCst);
                    let nonce = nonce(t, i);
                    let result = store.spend(&[7; 32], &nonce, u64::MAX);
                    if begun_after_kill {
                        after_kill.lock().unwrap().push(result.clone());
                        attempts_after_kill += 1;
                        if attempts_after_kill == 5 {
                            return;
                        }
                    }
                    match result {
                        Ok(outcome) => {
                            assert_eq!(outcome, SpendOutcome::Recorded);
                            acknowledged.lock().unwrap().push(nonce);
                            acked_count.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => assert!(killing.load(Ordering::SeqCst), "{e}"),
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_count.load(Ordering::SeqCst) < 3000 {
        assert!(Instant::now() < deadline, "spends too slow");
        std::thread::sleep(Duration::from_millis(5));
    }
    killing.store(true, Ordering::SeqCst);
    server.kill_9();
    killed.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().unwrap();
    }
    let after_kill = after_kill.lock().unwrap();
    assert_eq!(after_kill.len(), 16 * 5);
    assert!(
        after_kill.iter().all(Result::is_err),
        "a spend begun after the kill was acknowledged: {after_kill:?}"
    );
    drop(server);

    let _server = RedisServer::start(dir.path(), port);
    let acknowledged = acknowledged.lock().unwrap();
    eprintln!(
        "kill -9: {} spends acknowledged before the kill",
        acknowledged.len()
    );
    assert!(acknowledged.len() >= 3000);
    for nonce in acknowledged.iter() {
        assert_eq!(
            store.spend(&[7; 32], nonce, u64::MAX).unwrap(),
            SpendOutcome::AlreadySpent,
            "acknowledged spend lost"
        );
    }
    assert_eq!(
        store.spend(&[7; 32], &[0xee; 32], u64::MAX).unwrap(),
        SpendOutcome::Recorded
    );
}

#[test]
fn a_three_node_cluster_spends_once() {
    let cluster = Cluster::start();
    let store = open(&cluster.url());
    exactly_once_under_contention(&store);
    distinct_spends_are_all_recorded(&store, "cluster");
    // The spends of one key spread over every primary.
    for node in &cluster.nodes {
        let keys: u64 = node.cli(&["dbsize"]).trim().parse().unwrap();
        assert!(keys > 1000, "node {} holds {keys} spends", node.port);
    }
    idempotency_and_rate_limits(&store);
    // A second host opened from one node only finds the others.
    let one_node = format!("redis+cluster://127.0.0.1:{}", cluster.nodes[2].port);
    let other_host = open(&one_node);
    for token in 0..20u8 {
        assert_eq!(
            other_host.spend(&[3; 32], &[token; 32], u64::MAX).unwrap(),
            SpendOutcome::AlreadySpent
        );
    }
    assert_eq!(
        other_host.claim("k", &[2; 32], 60).unwrap(),
        Claim::Mismatch
    );
}

/// The expiry Redis holds for a spend.
fn expire_time(node: &RedisServer, key: &str) -> i64 {
    node.cli(&["expiretime", key]).trim().parse().unwrap()
}

/// A key's end of redemption moved forward: every spend of it, on every node that holds one,
/// expires later; the other keys' spends are untouched; an earlier end changes nothing.
fn retain_until_moves_every_spend_forward(store: &RedisStore, nodes: &[RedisServer]) {
    let end = unix_now() + 1000;
    for i in 0..200 {
        store.spend(&[0x11; 32], &nonce(0, i), end).unwrap();
    }
    store.spend(&[0x22; 32], &nonce(0, 0), end).unwrap();
    let later = end + 50_000;
    store.retain_until(&[0x11; 32], later).unwrap();
    store.retain_until(&[0x11; 32], end).unwrap();
    let mut seen = 0;
    for node in nodes {
        for i in 0..200 {
            let key = spend_key(&[0x11; 32], &nonce(0, i));
            if node.cli(&["exists", &key]).trim() == "1" {
                assert_eq!(expire_time(node, &key), (later + EXPIRY_MARGIN_SECS) as i64);
                seen += 1;
            }
        }
        let other = spend_key(&[0x22; 32], &nonce(0, 0));
        if node.cli(&["exists", &other]).trim() == "1" {
            assert_eq!(expire_time(node, &other), (end + EXPIRY_MARGIN_SECS) as i64);
        }
    }
    assert_eq!(seen, 200);
}

#[test]
fn a_key_whose_end_moved_forward_keeps_its_spends_longer() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path(), free_port());
    let store = open(&server.url());
    retain_until_moves_every_spend_forward(&store, std::slice::from_ref(&server));
}

#[test]
fn a_three_node_cluster_moves_a_keys_spends_forward_on_every_primary() {
    let cluster = Cluster::start();
    let store = open(&cluster.url());
    retain_until_moves_every_spend_forward(&store, &cluster.nodes);
}

#[test]
fn a_spend_that_redis_would_expire_at_once_is_refused() {
    // SET ... EXAT in the past answers OK and keeps nothing: such a spend must fail closed.
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path(), free_port());
    let store = open(&server.url());
    let past = unix_now() - EXPIRY_MARGIN_SECS - 10;
    for _ in 0..2 {
        let err = store.spend(&[0x33; 32], &[1; 32], past).unwrap_err();
        assert!(err.to_string().contains("not in the future"), "{err}");
    }
    assert!(!store.is_spent(&[0x33; 32], &[1; 32]).unwrap());
    store.probe_write().unwrap();
}

/// A primary and one replica; spends under load through `url_query`; the primary killed with
/// kill -9 mid-load and the replica promoted. Returns (acknowledged, lost on the replica).
fn failover_round(dir: &std::path::Path, url_query: &str) -> (usize, usize) {
    let primary = RedisServer::start(&dir.join("primary"), free_port());
    let replica_port = free_port();
    let primary_port = primary.port.to_string();
    let replica = RedisServer::start_with(
        &dir.join("replica"),
        replica_port,
        &["--replicaof", "127.0.0.1", &primary_port],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !replica
        .cli(&["INFO", "replication"])
        .contains("master_link_status:up")
    {
        assert!(Instant::now() < deadline, "the replica never synced");
        std::thread::sleep(Duration::from_millis(50));
    }
    let store = open(&format!("{}{url_query}", primary.url()));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8u8)
        .map(|t| {
            let (store, acknowledged, stop) = (store.clone(), acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(SpendOutcome::Recorded) =
                        store.spend(&[0x44; 32], &nonce(t, i), u64::MAX)
                    {
                        acknowledged.lock().unwrap().push(nonce(t, i));
                    }
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(600));
    primary.kill_9();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    replica.cli(&["REPLICAOF", "NO", "ONE"]);
    let promoted = open(&replica.url());
    let acknowledged = acknowledged.lock().unwrap();
    let lost = acknowledged
        .iter()
        .filter(|n| !promoted.is_spent(&[0x44; 32], n).unwrap())
        .count();
    (acknowledged.len(), lost)
}

#[test]
fn with_wait_a_failover_to_the_replica_loses_no_acknowledged_spend() {
    let dir = tempfile::tempdir().unwrap();
    let (acknowledged, lost) = failover_round(dir.path(), "?wait=1&wait_timeout_ms=200");
    eprintln!("wait=1: {acknowledged} spends acknowledged, {lost} lost after the failover");
    assert!(acknowledged > 100, "{acknowledged}");
    assert_eq!(lost, 0);
    // The same without wait, for the record (asynchronous replication may lose some).
    let dir = tempfile::tempdir().unwrap();
    let (acknowledged, lost) = failover_round(dir.path(), "");
    eprintln!("no wait: {acknowledged} spends acknowledged, {lost} lost after the failover");
}

#[test]
fn wait_is_refused_where_it_cannot_hold() {
    for (url, reason) in [
        ("redis+cluster://127.0.0.1:1?wait=1", "standalone"),
        ("redis://127.0.0.1:1?wait=0", "wait must be 1 to 16"),
        (
            "redis://127.0.0.1:1?wait=1&wait_timeout_ms=5000",
            "shorter than timeout_ms",
        ),
    ] {
        match RedisStore::open(url) {
            Err(OpenError::InvalidUrl { reason: r, .. }) => assert!(r.contains(reason), "{r}"),
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn with_wait_and_no_replica_a_spend_is_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path(), free_port());
    let store = open(&format!("{}?wait=1&wait_timeout_ms=50", server.url()));
    let err = store.spend(&[0x55; 32], &[1; 32], u64::MAX).unwrap_err();
    assert!(err.to_string().contains("0 of 1 replicas"), "{err}");
    // The primary holds it: a retry answers AlreadySpent, never a second success.
    assert!(store.is_spent(&[0x55; 32], &[1; 32]).unwrap());
    let again = store.spend(&[0x55; 32], &[1; 32], u64::MAX);
    assert!(!matches!(again, Ok(SpendOutcome::Recorded)), "{again:?}");
}
