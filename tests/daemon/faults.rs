//! The daemon's RocksDB store on a failing disk: one that fills up (a tmpfs of the test's own),
//! and one whose fsync fails or whose writes find no space (the FUSE filesystem of
//! tests/support/powercut_fs.rs, on command). A spend that could not be made durable answers
//! -32050 / 503 and is not acknowledged; the store then stays failed closed, and `/healthz` and
//! the metrics say so, until a restart, which finds every acknowledged spend; a token refused
//! with -32050 redeems after the restart only if its spend is really not on the disk. A data
//! directory on a full disk is a clear error at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../support/powercut_fs.rs"]
mod powercut_fs;
#[path = "../support/small_disk.rs"]
mod small_disk;

use std::time::Duration;

use common::*;
use powercut_fs::{Fault, PowerCutFs};
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

/// `/healthz` (after its one-second cache) and the metrics of a daemon whose store cannot write.
fn assert_reported_unwritable(agent: &ureq::Agent, daemon: &Daemon) {
    std::thread::sleep(Duration::from_millis(1100));
    let (status, body) = get(agent, &format!("{}/healthz", daemon.url));
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, health["store"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    let (_, metrics) = get(agent, &format!("{}/metrics", daemon.url));
    assert!(
        metrics.contains("privacypass_store_writable 0"),
        "{metrics}"
    );
}

/// A daemon on the FUSE disk with ten acknowledged spends; then `fault`, a redeem refused with
/// -32050, health and metrics reporting it, and the fault cleared: the store stays failed
/// closed. Returns the daemon, the acknowledged tokens and the refused one.
fn refused_under(
    fault: Fault,
    fs: &PowerCutFs,
) -> (
    Daemon,
    ureq::Agent,
    Minter,
    Vec<privacypass_core::Token>,
    privacypass_core::Token,
) {
    let daemon = Daemon::start(&fs.path().join("data"), &[]);
    let agent = agent();
    let minter = Minter::new(daemon.issuer_key());
    let url = format!("{}/api/redeem", daemon.url);
    let acknowledged: Vec<_> = (0..10).map(|_| minter.token()).collect();
    for token in &acknowledged {
        assert_eq!(rpc(&agent, &url, "redeem", redeem_params(token)).0, 200);
    }
    fs.set_fault(Some(fault));
    let refused = minter.token();
    let (status, body) = rpc(&agent, &url, "redeem", redeem_params(&refused));
    assert_eq!((status, error_code(&body)), (503, Some(-32050)), "{body}");
    assert_reported_unwritable(&agent, &daemon);
    // The disk is well again; the store is not: RocksDB took a write error and stops writing
    // until it is opened again, so every spend fails closed until a restart.
    fs.set_fault(None);
    let (status, body) = rpc(&agent, &url, "redeem", redeem_params(&minter.token()));
    assert_eq!((status, error_code(&body)), (503, Some(-32050)), "{body}");
    assert_reported_unwritable(&agent, &daemon);
    (daemon, agent, minter, acknowledged, refused)
}

fn assert_spent(agent: &ureq::Agent, daemon: &Daemon, tokens: &[privacypass_core::Token]) {
    let url = format!("{}/api/redeem", daemon.url);
    for token in tokens {
        let (status, body) = rpc(agent, &url, "redeem", redeem_params(token));
        assert_eq!((status, error_code(&body)), (403, Some(-32021)), "{body}");
    }
}

#[test]
fn a_failed_fsync_whose_data_reached_the_disk_leaves_the_token_spent() {
    let fs = PowerCutFs::mount();
    let (mut daemon, agent, minter, acknowledged, refused) =
        refused_under(Fault::FsyncFailsDataKept, &fs);
    daemon.kill9();
    daemon.start_again();
    assert_spent(&agent, &daemon, &acknowledged);
    // Its spend is on the disk although the fsync failed: refused once, never redeemable.
    assert_spent(&agent, &daemon, &[refused]);
    let url = format!("{}/api/redeem", daemon.url);
    assert_eq!(
        rpc(&agent, &url, "redeem", redeem_params(&minter.token())).0,
        200
    );
    assert_eq!(get(&agent, &format!("{}/healthz", daemon.url)).0, 200);
}

#[test]
fn a_failed_fsync_whose_data_was_lost_lets_the_token_redeem_once_after_the_restart() {
    let mut fs = PowerCutFs::mount();
    let (mut daemon, agent, _minter, acknowledged, refused) =
        refused_under(Fault::FsyncFailsDataLost, &fs);
    // The power goes before anything else reaches the disk: the refused spend is not on it.
    fs.power_cut();
    daemon.kill9();
    fs.remount();
    daemon.start_again();
    assert_spent(&agent, &daemon, &acknowledged);
    let url = format!("{}/api/redeem", daemon.url);
    let (status, body) = rpc(&agent, &url, "redeem", redeem_params(&refused));
    assert_eq!(status, 200, "{body}");
    assert_spent(&agent, &daemon, &[refused]);
}

#[test]
fn no_space_on_write_fails_closed_until_a_restart_finds_every_acknowledged_spend() {
    let fs = PowerCutFs::mount();
    let (mut daemon, agent, _minter, acknowledged, refused) =
        refused_under(Fault::WriteNoSpace, &fs);
    daemon.kill9();
    daemon.start_again();
    assert_spent(&agent, &daemon, &acknowledged);
    // Nothing of the refused spend was written: it redeems once now, then never again.
    let url = format!("{}/api/redeem", daemon.url);
    let (status, body) = rpc(&agent, &url, "redeem", redeem_params(&refused));
    assert_eq!(status, 200, "{body}");
    assert_spent(&agent, &daemon, &[refused]);
}
