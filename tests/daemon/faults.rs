//! The daemon's RocksDB store on a disk that fills up (a tmpfs of the test's own): redemption
//! fails closed, health and metrics say so, a restart recovers every acknowledged spend; and a
//! data directory on a full disk is a clear error at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../support/small_disk.rs"]
mod small_disk;

use std::time::Duration;

use common::*;
use serde_json::Value;
use small_disk::SmallDisk;

fn get(agent: &ureq::Agent, url: &str) -> (u16, String) {
    let mut resp = agent.get(url).call().unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    )
}

#[test]
fn a_full_disk_fails_redemption_closed_until_a_restart_recovers_it() {
    let disk = SmallDisk::mount(24);
    let mut daemon = Daemon::start(&disk.path.join("data"), &[]);
    let agent = agent();
    let minter = Minter::new(daemon.issuer_key());
    let url = format!("{}/api/redeem", daemon.url);
    let mut acknowledged = Vec::new();
    for _ in 0..20 {
        let token = minter.token();
        assert_eq!(rpc(&agent, &url, "redeem", redeem_params(&token)).0, 200);
        acknowledged.push(token);
    }
    disk.fill();
    let mut refused = None;
    for _ in 0..5000 {
        let token = minter.token();
        let (status, body) = rpc(&agent, &url, "redeem", redeem_params(&token));
        match status {
            200 => acknowledged.push(token),
            503 => {
                refused = Some((error_code(&body), token));
                break;
            }
            other => panic!("redeem on a full disk answered {other}: {body}"),
        }
    }
    let (code, refused) = refused.expect("no redeem failed on the full disk");
    assert_eq!(code, Some(-32050));
    std::thread::sleep(Duration::from_millis(1100));
    let (status, body) = get(&agent, &format!("{}/healthz", daemon.url));
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, health["store"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    let (_, metrics) = get(&agent, &format!("{}/metrics", daemon.url));
    assert!(
        metrics.contains("privacypass_store_writable 0"),
        "{metrics}"
    );
    // Space again: the store stays closed (RocksDB stopped taking writes) until a restart.
    disk.free();
    let (status, _) = rpc(&agent, &url, "redeem", redeem_params(&minter.token()));
    assert_eq!(status, 503);
    daemon.restart();
    let url = format!("{}/api/redeem", daemon.url);
    for token in &acknowledged {
        let (status, body) = rpc(&agent, &url, "redeem", redeem_params(token));
        assert_eq!((status, error_code(&body)), (403, Some(-32021)), "{body}");
    }
    // The refused token was not acknowledged; after the restart it redeems once, or is found
    // spent if its write reached the log before the disk filled: never twice.
    let (first, _) = rpc(&agent, &url, "redeem", redeem_params(&refused));
    let (second, body) = rpc(&agent, &url, "redeem", redeem_params(&refused));
    assert!(first == 200 || first == 403, "{first}");
    assert_eq!((second, error_code(&body)), (403, Some(-32021)));
    assert_eq!(get(&agent, &format!("{}/healthz", daemon.url)).0, 200);
}

#[test]
fn a_data_directory_on_a_full_disk_is_a_clear_error_at_start() {
    let disk = SmallDisk::mount(4);
    disk.fill();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--generate-key-if-missing",
            "true",
        ])
        .arg("--data-dir")
        .arg(disk.path.join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
