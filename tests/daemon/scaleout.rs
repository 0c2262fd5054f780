//! Several daemons behind a load balancer on one shared Redis store: a real nginx balancing
//! round-robin over three privacypassd, a real redis-server (standalone, and a 3-node cluster),
//! all on 127.0.0.1 and stopped by the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../support/redis_server.rs"]
mod redis_server;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use redis_server::{free_port, Cluster, RedisServer};
use serde_json::{json, Value};

/// Fails (never skips) when a program the tests need is missing.
fn require(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap()
        .status
        .success();
    assert!(
        found,
        "{program} is not installed: `make test` installs it (Debian package {program})"
    );
}

/// nginx balancing round-robin over `upstreams`.
struct Nginx {
    child: Option<Child>,
    url: String,
    _prefix: tempfile::TempDir,
}

impl Nginx {
    fn start(upstreams: &[&str]) -> Nginx {
        require("nginx");
        let prefix = tempfile::tempdir().unwrap();
        let port = free_port();
        let p = prefix.path().display();
        let servers: String = upstreams
            .iter()
            .map(|u| format!("    server {};\n", u.trim_start_matches("http://")))
            .collect();
        let conf = format!(
            "worker_processes 2;\ndaemon off;\nuser root;\npid {p}/nginx.pid;\n\
             error_log {p}/error.log warn;\nevents {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
             fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
             upstream daemons {{\n{servers}    keepalive 32;\n  }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://daemons;\n\
             proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_next_upstream off;\n    }}\n  }}\n}}\n"
        );
        let conf_path = prefix.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let agent = agent();
        while agent.get(format!("{url}/healthz")).call().is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child: Some(child),
            url,
            _prefix: prefix,
        }
    }
}

impl Drop for Nginx {
    /// SIGTERM to the master, which stops its workers; SIGKILL would orphan them.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Three daemons on one store URL and one key directory.
fn three_daemons(dir: &Path, store: &str, extra: &[&str]) -> Vec<Daemon> {
    let keys = dir.join("keys");
    (0..3)
        .map(|i| {
            let mut args = vec!["--store", store, "--keys-dir", keys.to_str().unwrap()];
            args.extend_from_slice(extra);
            Daemon::start(&dir.join(format!("daemon{i}")), &args)
        })
        .collect()
}

/// 64 concurrent redeems of each of 20 tokens through the balancer: exactly one success each.
fn exactly_once_through(url: &str, minter: &Minter) {
    let redeem_url = format!("{url}/api/redeem");
    for round in 0..20 {
        let token = minter.token();
        let barrier = Arc::new(Barrier::new(64));
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let (barrier, url, params) =
                    (barrier.clone(), redeem_url.clone(), redeem_params(&token));
                std::thread::spawn(move || {
                    let agent = agent();
                    barrier.wait();
                    rpc(&agent, &url, "redeem", params)
                })
            })
            .collect();
        let answers: Vec<(u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let successes = answers.iter().filter(|(s, _)| *s == 200).count();
        assert_eq!(successes, 1, "round {round}: {answers:?}");
        assert!(
            answers
                .iter()
                .all(|(s, b)| *s == 200 || (*s == 403 && error_code(b) == Some(-32021))),
            "round {round}: {answers:?}"
        );
    }
}

/// How many times Redis ran `command` (INFO commandstats).
fn calls(redis: &RedisServer, command: &str) -> u64 {
    let stats = redis.cli(&["INFO", "commandstats"]);
    let prefix = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

/// A token redeemed at one daemon is spent at the others.
fn spent_everywhere(daemons: &[Daemon], minter: &Minter) {
    let agent = agent();
    let token = minter.token();
    let (status, body) = rpc(
        &agent,
        &format!("{}/api/redeem", daemons[0].url),
        "redeem",
        redeem_params(&token),
    );
    assert_eq!(status, 200, "{body}");
    for daemon in &daemons[1..] {
        let (status, body) = rpc(
            &agent,
            &format!("{}/api/redeem", daemon.url),
            "redeem",
            redeem_params(&token),
        );
        assert_eq!((status, error_code(&body)), (403, Some(-32021)), "{body}");
    }
}

#[test]
fn three_daemons_on_redis_spend_each_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let redis_dir = dir.path().join("redis");
    let redis = RedisServer::start(&redis_dir, free_port());
    let daemons = three_daemons(dir.path(), &redis.url(), &[]);
    let urls: Vec<&str> = daemons.iter().map(|d| d.url.as_str()).collect();
    let nginx = Nginx::start(&urls);
    let minter = Minter::new(daemons[0].issuer_key());
    let (exists, sets) = (calls(&redis, "exists"), calls(&redis, "set"));
    exactly_once_through(&nginx.url, &minter);
    spent_everywhere(&daemons, &minter);
    // One command per redemption: SET NX records the spend and tells a spent token; no
    // separate spent check goes to Redis.
    assert_eq!(calls(&redis, "exists"), exists);
    assert_eq!(calls(&redis, "set") - sets, 20 * 64 + 3);

    // Redis killed under load: every redeem answers 503 / -32050, none succeeds; Redis back
    // (same append-only file): every acknowledged spend is still there and service resumes.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (acknowledged, stop, killed) = (acknowledged.clone(), stop.clone(), killed.clone());
            let url = format!("{}/api/redeem", nginx.url);
            let key = daemons[0].issuer_key();
            std::thread::spawn(move || {
                let minter = Minter::new(key);
                let agent = agent();
                let mut after_kill = 0;
                while !stop.load(Ordering::SeqCst) {
                    let token = minter.token();
                    let was_killed = killed.load(Ordering::SeqCst);
                    let (status, body) = rpc(&agent, &url, "redeem", redeem_params(&token));
                    if was_killed {
                        assert_eq!(
                            (status, error_code(&body)),
                            (503, Some(-32050)),
                            "a redeem after Redis died: {body}"
                        );
                        after_kill += 1;
                    } else if status == 200 {
                        acknowledged.lock().unwrap().push(token);
                    }
                }
                after_kill
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    redis.kill_9();
    killed.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::SeqCst);
    let refused: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(refused > 0, "no redeem ran while Redis was down");
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        !acknowledged.is_empty(),
        "no redeem succeeded before the kill"
    );
    // Back on the same port, from the same append-only file.
    let _redis = RedisServer::start(&redis_dir, redis.port);
    let agent = agent();
    let redeem_url = format!("{}/api/redeem", nginx.url);
    for token in &acknowledged {
        let (status, body) = rpc(&agent, &redeem_url, "redeem", redeem_params(token));
        assert_eq!((status, error_code(&body)), (403, Some(-32021)), "{body}");
    }
    let (status, body) = rpc(
        &agent,
        &redeem_url,
        "redeem",
        redeem_params(&minter.token()),
    );
    assert_eq!(status, 200, "{body}");
    println!(
        "{} spends acknowledged before the kill, all still spent; {refused} redeems refused while Redis was down",
        acknowledged.len()
    );
}

#[test]
fn three_daemons_on_a_redis_cluster_spend_each_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start();
    let daemons = three_daemons(dir.path(), &cluster.url(), &[]);
    let urls: Vec<&str> = daemons.iter().map(|d| d.url.as_str()).collect();
    let nginx = Nginx::start(&urls);
    let minter = Minter::new(daemons[0].issuer_key());
    exactly_once_through(&nginx.url, &minter);
    spent_everywhere(&daemons, &minter);
}

#[test]
fn rate_limits_and_idempotency_hold_across_daemons() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(&dir.path().join("redis"), free_port());
    let keys_file = dir.path().join("api-keys");
    std::fs::write(&keys_file, "plain-text-api-key-0001\n").unwrap();
    let daemons = three_daemons(
        dir.path(),
        &redis.url(),
        &[
            "--api-keys",
            keys_file.to_str().unwrap(),
            "--rate-limit",
            "10/3600",
        ],
    );
    let urls: Vec<&str> = daemons.iter().map(|d| d.url.as_str()).collect();
    let nginx = Nginx::start(&urls);
    let key = daemons[0].issuer_key();
    let key_id = hex::encode(key.public_key().token_key_id());
    let client = privacypass_core::Client::new(key.public_key().clone());
    let body = |_: usize| {
        let pending = client.request(&challenge()).unwrap();
        json!({"blinded-token": privacypass_core::b64::encode_url(&pending.request().blinded_msg), "key-id": key_id})
            .to_string()
    };
    let agent = agent();
    let post = |url: &str, idempotency: Option<&str>, body: &str| {
        let mut req = agent
            .post(format!("{url}/api/v1/privacy-passes"))
            .header("authorization", "Bearer plain-text-api-key-0001")
            .header("content-type", "application/json");
        if let Some(k) = idempotency {
            req = req.header("idempotency-key", k);
        }
        let mut resp = req.send(body).unwrap();
        let status = resp.status().as_u16();
        let replayed = resp.headers().get("idempotent-replayed").is_some();
        let reset: u64 = resp.headers()["ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        (
            status,
            replayed,
            reset,
            resp.body_mut().read_to_string().unwrap(),
        )
    };

    clear_of_window_end(3600);
    // One Idempotency-Key, first at one daemon, then at the others: the first response.
    let first_body = body(0);
    let (status, _, _, first) = post(&daemons[0].url, Some("order-1"), &first_body);
    assert_eq!(status, 201, "{first}");
    for daemon in &daemons[1..] {
        let (status, replayed, _, again) = post(&daemon.url, Some("order-1"), &first_body);
        assert_eq!((status, replayed, &again), (201, true, &first));
    }

    // 3 calls made (the replays count); 7 more pass through the balancer (spread over the three daemons), then 429.
    let (mut passed, mut limited, mut reset_seen) = (0, 0, u64::MAX);
    for i in 0..12 {
        let (status, _, reset, text) = post(&nginx.url, None, &body(i));
        assert!(reset <= reset_seen, "one window throughout");
        reset_seen = reset;
        match status {
            201 => passed += 1,
            429 => limited += 1,
            other => panic!("{other}: {text}"),
        }
    }
    assert_eq!((passed, limited), (7, 5));
}

/// The rotation policy of the fleet test, in seconds: keys issue for 12, the next is published
/// 5 ahead, tokens redeem 6 after, daemons look at the keys directory every second (so the
/// directory's max-age is (5 - 1) / 2 = 2).
const FLEET_POLICY: [&str; 8] = [
    "--key-lifetime",
    "12",
    "--publish-ahead",
    "5",
    "--redemption-grace",
    "6",
    "--keys-poll",
    "1",
];

/// A token issued by `daemon` with the type-2 key `spki` over JSON-RPC: the token, or the
/// error code of the refusal.
fn issue_token(daemon: &Daemon, spki: &[u8]) -> Result<privacypass_core::Token, i64> {
    let key = Arc::new(privacypass_core::PublicKey::from_spki(spki).unwrap());
    let pending = privacypass_core::Client::new(key.clone())
        .request(&challenge())
        .unwrap();
    let (_, body) = rpc(
        &agent(),
        &format!("{}/rpc", daemon.url),
        "issue",
        json!({"blinded-token": privacypass_core::b64::encode_url(&pending.request().encode()),
            "key-id": hex::encode(key.token_key_id())}),
    );
    match body["result"]["blind-sig"].as_str() {
        Some(sig) => Ok(pending
            .finalize(&privacypass_core::b64::decode_url(sig).unwrap())
            .unwrap()),
        None => Err(error_code(&body).unwrap()),
    }
}

fn redeem_at(daemon: &Daemon, token: &privacypass_core::Token) -> Result<(), i64> {
    let (_, body) = rpc(
        &agent(),
        &format!("{}/api/redeem", daemon.url),
        "redeem",
        redeem_params(token),
    );
    match body["result"].as_str() {
        Some("success") => Ok(()),
        _ => Err(error_code(&body).unwrap()),
    }
}

/// Waits until `at` (Unix seconds).
fn sleep_until(at: u64) {
    let now = privacypass_core::unix_now();
    if at > now {
        std::thread::sleep(Duration::from_secs(at - now));
    }
}

/// Two daemons on one keys directory and one Redis: `keys rotate` publishes the next key,
/// both list it within the keys poll (no SIGHUP), it issues at its not-before, and tokens of
/// the old key redeem at both (each once across the fleet) until its end of redemption.
#[test]
fn a_fleet_on_one_keys_directory_follows_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(&dir.path().join("redis"), free_port());
    let keys = dir.path().join("keys");
    let rotate = |extra: &[&str]| {
        let args = [&["keys", "rotate"][..], &FLEET_POLICY, extra].concat();
        privacypassd(&args, &keys)
    };
    let first = rotate(&[]);
    assert!(first.starts_with("generate blind-rsa-2048 key"), "{first}");
    let store = redis.url();
    let args = [
        &[
            "--store",
            store.as_str(),
            "--keys-dir",
            keys.to_str().unwrap(),
        ][..],
        &FLEET_POLICY,
    ]
    .concat();
    let fleet: Vec<Daemon> = (0..2)
        .map(|i| Daemon::start(&dir.path().join(format!("daemon{i}")), &args))
        .collect();
    let listed = directory(&fleet[0]);
    assert_eq!(listed.token_keys.len(), 1);
    let old = listed.token_keys[0].clone();
    let old_start = old.not_before.unwrap();
    let resp = agent()
        .get(format!(
            "{}/.well-known/private-token-issuer-directory",
            fleet[0].url
        ))
        .call()
        .unwrap();
    assert_eq!(
        resp.headers().get("cache-control").unwrap(),
        "public, max-age=2, must-revalidate"
    );
    // Tokens of the old key, to redeem after it stops issuing.
    let tokens: Vec<_> = (0..3)
        .map(|_| issue_token(&fleet[0], &old.token_key).unwrap())
        .collect();
    // Not due before 12 - 5 = 7 s in: nothing done (a dry run says so too).
    assert!(rotate(&["--dry-run"]).starts_with("nothing due"));
    sleep_until(old_start + 7);
    let rotated = rotate(&[]);
    assert!(
        rotated.starts_with("generate blind-rsa-2048 key"),
        "{rotated}"
    );
    assert!(
        rotate(&[]).starts_with("nothing due"),
        "rotation is idempotent"
    );
    let published = std::time::Instant::now();
    for daemon in &fleet {
        loop {
            let listed = directory(daemon);
            if listed.token_keys.len() == 2 {
                // Pending first, so a client taking the first key whose not-before passed
                // takes the key issuing at any time.
                let next = &listed.token_keys[0];
                assert!(next.not_before.unwrap() >= old_start + 12, "{listed:?}");
                assert_eq!(listed.token_keys[1], old, "{listed:?}");
                break;
            }
            assert!(
                published.elapsed() < Duration::from_millis(2500),
                "a daemon did not list the next key within the keys poll"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let next = directory(&fleet[1]).token_keys[0].clone();
    // Before its not-before the next key does not issue; after it, it does, and the old one
    // no longer does.
    assert_eq!(issue_token(&fleet[1], &next.token_key).unwrap_err(), -32023);
    sleep_until(next.not_before.unwrap() + 1);
    for daemon in &fleet {
        issue_token(daemon, &next.token_key).unwrap();
        assert_eq!(issue_token(daemon, &old.token_key).unwrap_err(), -32023);
        // Still listed, after the issuing key, while its tokens redeem.
        assert_eq!(
            directory(daemon).token_keys,
            vec![next.clone(), old.clone()]
        );
    }
    // The old key's tokens redeem at both daemons, each once across the fleet.
    redeem_at(&fleet[0], &tokens[0]).unwrap();
    redeem_at(&fleet[1], &tokens[1]).unwrap();
    assert_eq!(redeem_at(&fleet[1], &tokens[0]).unwrap_err(), -32021);
    assert_eq!(redeem_at(&fleet[0], &tokens[1]).unwrap_err(), -32021);
    // Past its end of redemption (12 + 6 s): refused everywhere, and the next rotation
    // removes it.
    sleep_until(old_start + 12 + 6 + 1);
    for daemon in &fleet {
        assert!(redeem_at(daemon, &tokens[2]).is_err());
        assert_eq!(directory(daemon).token_keys, vec![next.clone()]);
    }
    let removed = rotate(&[]);
    assert!(removed.contains("remove key"), "{removed}");
}

/// `serve --rotate`: the daemon rotates its keys directory itself, publishing the next key when
/// it is due, and counts the rotation.
#[test]
fn a_daemon_with_rotate_publishes_the_next_key_itself() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let policy = [
        "--key-lifetime",
        "30",
        "--publish-ahead",
        "20",
        "--redemption-grace",
        "5",
        "--keys-poll",
        "1",
    ];
    let first = privacypassd(&[&["keys", "rotate"][..], &policy].concat(), &keys);
    assert!(first.starts_with("generate"), "{first}");
    let args = [
        &["--rotate", "--keys-dir", keys.to_str().unwrap()][..],
        &policy,
    ]
    .concat();
    let daemon = Daemon::start(&dir.path().join("daemon"), &args);
    let start = directory(&daemon).token_keys[0].not_before.unwrap();
    assert_eq!(directory(&daemon).token_keys.len(), 1, "not due yet");
    // Due at 30 - 20 = 10 s in; listed within a poll or two.
    sleep_until(start + 10);
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while directory(&daemon).token_keys.len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no next key");
        std::thread::sleep(Duration::from_millis(100));
    }
    let next = directory(&daemon).token_keys[0].not_before.unwrap();
    assert_eq!(next, start + 30);
    assert_eq!(
        metric(&daemon, "privacypass_rotations_total{outcome=\"done\"}"),
        1
    );
    let remaining = metric(
        &daemon,
        "privacypass_key_issuing_seconds_remaining{token_type=\"2\"}",
    );
    assert!((35..=60).contains(&remaining), "{remaining}");
}
