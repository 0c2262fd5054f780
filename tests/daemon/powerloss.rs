//! Power loss under load. The daemon keeps its data directory (keys and RocksDB spends) on a FUSE
//! filesystem that drops every byte not made durable when the power is cut
//! (`tests/support/powercut_fs.rs`). Each round: clients redeem fresh tokens concurrently, the
//! power is cut at a random moment (the filesystem freezes and the daemon is killed at once),
//! the filesystem comes back with only what was durable, the daemon restarts on it, and every
//! spend it acknowledged must still be spent.
//!
//! `POWERLOSS_ROUNDS` (default 20) sets the rounds and `POWERLOSS_SEED` the random cut moments;
//! `make crash-soak` runs many rounds. With the test-only `PRIVACYPASS_TEST_UNSYNCED_WAL=1` the
//! store writes its log without syncing it, and the same rounds must lose spends: the test can
//! tell.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../support/powercut_fs.rs"]
mod powercut_fs;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use powercut_fs::PowerCutFs;
use privacypass_core::Token;

const CLIENTS: usize = 16;
const TOKENS_PER_ROUND: usize = 800;

/// (HTTP status, JSON-RPC error code), or None when the connection failed.
type Answer = Option<(u16, Option<i64>)>;

fn redeem(agent: &ureq::Agent, url: &str, token: &Token) -> Answer {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "redeem", "params": redeem_params(token)});
    let mut resp = agent.post(url).send_json(&body).ok()?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some((status, error_code(&value)))
}

/// Redeems every token from CLIENTS threads; stops a thread at its first failed connection.
fn redeem_all(url: &str, tokens: Vec<Token>) -> Vec<(Token, Answer)> {
    let queue = Mutex::new(tokens);
    let answers = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                let agent = agent();
                loop {
                    let Some(token) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let answer = redeem(&agent, url, &token);
                    answers.lock().unwrap().push((token, answer));
                    if answer.is_none() {
                        break;
                    }
                }
            });
        }
    });
    answers.into_inner().unwrap()
}

fn mint(minter: &Minter, n: usize) -> Vec<Token> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| (0..n / 2).map(|_| minter.token()).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

#[derive(Debug, Default)]
struct Totals {
    rounds: usize,
    acknowledged: usize,
    found: usize,
    lost: usize,
    /// Spends found in their round but lost by a later cut.
    lost_later: usize,
    /// What the lost tokens answered after the restart.
    lost_answers: BTreeMap<String, usize>,
    /// Answers during the load other than success and a failed connection.
    refused: BTreeMap<String, usize>,
}

/// Checks that every acknowledged token is still spent (each answers -32021 now), and returns
/// those that are.
fn check_spent(url: &str, acknowledged: &[Token], totals: &mut Totals) -> Vec<Token> {
    let mut spent = Vec::new();
    for (token, answer) in redeem_all(url, acknowledged.to_vec()) {
        if answer == Some((403, Some(-32021))) {
            totals.found += 1;
            spent.push(token);
        } else {
            totals.lost += 1;
            *totals
                .lost_answers
                .entry(format!("{answer:?}"))
                .or_default() += 1;
        }
    }
    spent
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn seed() -> u64 {
    std::env::var("POWERLOSS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

fn power_loss_rounds(label: &str, rounds: usize, env: &[(&str, &str)]) -> Totals {
    let seed = seed();
    let mut rng = Rng(seed);
    let mut fs = PowerCutFs::mount();
    let mut daemon = Daemon::start_with_env(&fs.path().join("data"), &[], env);
    let minter = Minter::new(daemon.issuer_key());
    let mut totals = Totals::default();
    let mut every_acknowledged = Vec::new();
    let started = Instant::now();
    for round in 0..rounds {
        let tokens = mint(&minter, TOKENS_PER_ROUND);
        let url = format!("{}/api/redeem", daemon.url);
        let cut_after = Duration::from_millis(2 + rng.next() % 80);
        let answers = std::thread::scope(|scope| {
            let load = scope.spawn(|| redeem_all(&url, tokens));
            std::thread::sleep(cut_after);
            fs.power_cut();
            daemon.kill9();
            load.join().unwrap()
        });
        let mut acknowledged = Vec::new();
        for (token, answer) in answers {
            match answer {
                Some((200, None)) => acknowledged.push(token),
                None => {}
                other => *totals.refused.entry(format!("{other:?}")).or_default() += 1,
            }
        }
        fs.remount();
        daemon.start_again();
        let lost_before = totals.lost;
        let spent = check_spent(
            &format!("{}/api/redeem", daemon.url),
            &acknowledged,
            &mut totals,
        );
        totals.acknowledged += acknowledged.len();
        totals.rounds += 1;
        eprintln!(
            "{label}: round {round}: cut after {} ms, {} acknowledged, {} lost",
            cut_after.as_millis(),
            acknowledged.len(),
            totals.lost - lost_before
        );
        every_acknowledged.extend(spent);
    }
    // After every cut and restart, each spend found in its round is still spent.
    let mut last = Totals::default();
    check_spent(
        &format!("{}/api/redeem", daemon.url),
        &every_acknowledged,
        &mut last,
    );
    totals.lost_later = last.lost;
    let stats = fs.stats();
    eprintln!(
        "{label}: {} rounds in {:.0} s (seed {seed}): {} spends acknowledged, {} found spent after the cuts, lost = {} (and {} more lost by later cuts); {} power cuts dropped {} unsynced bytes; {} file and {} directory syncs; refused during the cuts: {:?}; lost tokens answered: {:?}",
        totals.rounds,
        started.elapsed().as_secs_f64(),
        totals.acknowledged,
        totals.found,
        totals.lost,
        totals.lost_later,
        stats.power_cuts,
        stats.bytes_lost,
        stats.file_syncs,
        stats.dir_syncs,
        totals.refused,
        totals.lost_answers,
    );
    drop(daemon);
    totals
}

fn rounds() -> usize {
    std::env::var("POWERLOSS_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

#[test]
fn every_acknowledged_spend_survives_power_loss_under_load() {
    let totals = power_loss_rounds("power loss", rounds(), &[]);
    assert!(
        totals.acknowledged >= totals.rounds * 20,
        "too few spends acknowledged to mean anything: {totals:?}"
    );
    assert_eq!((totals.lost, totals.lost_later), (0, 0), "{totals:?}");
    // Only the cut itself may refuse a spend: -32050, nothing acknowledged.
    for answer in totals.refused.keys() {
        assert_eq!(answer, "Some((503, Some(-32050)))", "{totals:?}");
    }
}

#[test]
fn without_the_log_sync_the_same_rounds_lose_spends() {
    let totals = power_loss_rounds(
        "unsynced log (must lose)",
        3,
        &[("PRIVACYPASS_TEST_UNSYNCED_WAL", "1")],
    );
    assert!(totals.acknowledged > 0, "{totals:?}");
    assert!(
        totals.lost > 0,
        "no spend lost with the log unsynced: the power-loss test could not tell: {totals:?}"
    );
}
