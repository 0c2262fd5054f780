//! The RocksDB spend store on a real database in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/spends.rs"]
mod spends;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

use privacypass::{SpendOutcome, SpendStore};
use privacypass_stores::rocks::RocksStore;
use spends::exactly_once_under_contention;

#[test]
fn spends_once_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path()).unwrap();
        assert_eq!(
            store.spend(&[1; 32], &[2; 32], u64::MAX).unwrap(),
            SpendOutcome::Recorded
        );
        assert_eq!(
            store.spend(&[1; 32], &[2; 32], u64::MAX).unwrap(),
            SpendOutcome::AlreadySpent
        );
        assert_eq!(
            store.spend(&[9; 32], &[2; 32], u64::MAX).unwrap(),
            SpendOutcome::Recorded,
            "other key"
        );
        assert!(!store.is_spent(&[1; 32], &[3; 32]).unwrap());
    }
    let store = RocksStore::open(dir.path()).unwrap();
    assert!(store.is_spent(&[1; 32], &[2; 32]).unwrap());
    assert_eq!(
        store.spend(&[1; 32], &[2; 32], u64::MAX).unwrap(),
        SpendOutcome::AlreadySpent
    );
    let mut families = store.key_families().unwrap();
    families.sort();
    assert_eq!(families, vec![[1; 32], [9; 32]]);
}

#[test]
fn concurrent_spends_of_one_token_succeed_once() {
    let dir = tempfile::tempdir().unwrap();
    exactly_once_under_contention(&Arc::new(RocksStore::open(dir.path()).unwrap()));
}

#[test]
fn concurrent_distinct_spends_are_all_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    let handles: Vec<_> = (0..16u8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..200u8 {
                    let mut nonce = [t; 32];
                    nonce[31] = i;
                    assert_eq!(
                        store.spend(&[4; 32], &nonce, u64::MAX).unwrap(),
                        SpendOutcome::Recorded
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for t in 0..16u8 {
        for i in 0..200u8 {
            let mut nonce = [t; 32];
            nonce[31] = i;
            assert!(store.is_spent(&[4; 32], &nonce).unwrap());
        }
    }
}

#[test]
fn expired_keys_are_dropped_whole() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path()).unwrap();
        store.spend(&[5; 32], &[1; 32], 100).unwrap();
        store.spend(&[6; 32], &[1; 32], 200).unwrap();
        assert_eq!(store.purge_expired(150).unwrap(), 1);
        assert!(!store.is_spent(&[5; 32], &[1; 32]).unwrap());
        assert!(store.is_spent(&[6; 32], &[1; 32]).unwrap());
    }
    let store = RocksStore::open(dir.path()).unwrap();
    assert_eq!(store.key_families().unwrap(), vec![[6; 32]]);
    assert_eq!(store.purge_expired(150).unwrap(), 0);
    assert_eq!(store.purge_expired(250).unwrap(), 1);
    assert!(store.key_families().unwrap().is_empty());
}

#[test]
fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = RocksStore::open(dir.path()).unwrap();
    let err = RocksStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("lock"), "{err}");
}

#[test]
fn kill_9_keeps_every_acknowledged_spend() {
    let dir = tempfile::tempdir().unwrap();
    // The example binary sits next to the test binaries' directory.
    let exe = std::env::current_exe().unwrap();
    let writer = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/spend_writer");
    assert!(
        writer.exists(),
        "{} is built by `cargo build --all-targets`",
        writer.display()
    );
    let mut child = Command::new(&writer)
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        acked.push(line.unwrap());
        if acked.len() == 3000 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    for nonce in &acked {
        let nonce: [u8; 32] = hex::decode(nonce).unwrap().try_into().unwrap();
        assert!(
            store.is_spent(&[7; 32], &nonce).unwrap(),
            "acknowledged spend lost"
        );
    }
}

#[test]
fn idempotency_records_survive_reopen_and_expire() {
    use privacypass_stores::{Claim, IdempotencyStore};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path()).unwrap();
        assert_eq!(store.claim("k", &[1; 32], 60).unwrap(), Claim::Claimed);
        assert_eq!(store.claim("k", &[1; 32], 60).unwrap(), Claim::InFlight);
        store.complete("k", &[1; 32], b"response", 3600).unwrap();
        assert_eq!(store.claim("short", &[1; 32], 60).unwrap(), Claim::Claimed);
        store.complete("short", &[1; 32], b"gone soon", 0).unwrap();
        // A claim in flight when the process stops is not a record.
        assert_eq!(
            store.claim("crashed", &[1; 32], 60).unwrap(),
            Claim::Claimed
        );
    }
    let store = RocksStore::open(dir.path()).unwrap();
    assert_eq!(
        store.claim("k", &[1; 32], 60).unwrap(),
        Claim::Replay(b"response".to_vec())
    );
    assert_eq!(store.claim("k", &[2; 32], 60).unwrap(), Claim::Mismatch);
    assert_eq!(
        store.claim("crashed", &[1; 32], 60).unwrap(),
        Claim::Claimed
    );
    store
        .purge_expired(privacypass_stores::state::unix_now() + 1)
        .unwrap();
    assert_eq!(store.claim("short", &[2; 32], 60).unwrap(), Claim::Claimed);
    assert_eq!(
        store.claim("k", &[1; 32], 60).unwrap(),
        Claim::Replay(b"response".to_vec()),
        "a record that has not expired outlives a purge"
    );
}

/// `spend_with` from many threads at once, without blocking them: one Recorded per token, every
/// answer delivered, and a sync `spend` of the same token agrees.
#[test]
fn spend_with_answers_from_the_committer_once_per_token() {
    use std::sync::mpsc;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    assert!(!store.spend_with_blocks());
    let (tx, rx) = mpsc::channel();
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let (store, tx, barrier) = (store.clone(), tx.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..500u16 {
                    // Tokens 0..250 are spent by every thread; the rest by this thread only.
                    let mut nonce = [0u8; 32];
                    nonce[..2].copy_from_slice(&i.to_be_bytes());
                    if i >= 250 {
                        nonce[2] = t + 1;
                    }
                    let tx = tx.clone();
                    store.spend_with(
                        &[7; 32],
                        &nonce,
                        u64::MAX,
                        Box::new(move |outcome| tx.send((nonce, outcome)).unwrap()),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(tx);
    let mut recorded = std::collections::HashMap::new();
    let mut answers = 0;
    for (nonce, outcome) in rx.iter().take(8 * 500) {
        answers += 1;
        if outcome.unwrap() == SpendOutcome::Recorded {
            *recorded.entry(nonce).or_insert(0) += 1;
        }
    }
    assert_eq!(answers, 8 * 500);
    assert_eq!(recorded.len(), 250 + 8 * 250, "every token recorded");
    assert!(recorded.values().all(|&n| n == 1), "and only once");
    assert_eq!(
        store.spend(&[7; 32], &[0; 32], u64::MAX).unwrap(),
        SpendOutcome::AlreadySpent
    );
    // Dropping the store stops the committer after answering what is queued; the spends are
    // durable in the next open.
    let (tx, rx) = mpsc::channel();
    store.spend_with(
        &[7; 32],
        &[9; 32],
        u64::MAX,
        Box::new(move |outcome| tx.send(outcome).unwrap()),
    );
    drop(store);
    assert_eq!(rx.recv().unwrap().unwrap(), SpendOutcome::Recorded);
    let store = RocksStore::open(dir.path()).unwrap();
    assert!(store.is_spent(&[7; 32], &[9; 32]).unwrap());
    assert!(store.is_spent(&[7; 32], &[0; 32]).unwrap());
}
