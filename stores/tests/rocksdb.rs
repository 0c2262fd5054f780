//! The RocksDB spend store on a real database in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/small_disk.rs"]
mod small_disk;
#[path = "../../tests/support/spends.rs"]
mod spends;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use privacypass_core::{SpendOutcome, SpendStore};
use privacypass_stores::rocks::RocksStore;
use spends::{exactly_once_under_contention, spend_with_answers_once_per_token};

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
        // One synced write per spend recorded alone; the second spend of a token writes nothing.
        let sizes = store.commit_sizes().unwrap();
        assert_eq!((sizes.writes, sizes.spends, sizes.buckets[0]), (2, 2, 2));
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
    // Sixteen spenders at once share fsyncs: fewer synced writes than spends, all counted.
    let sizes = store.commit_sizes().unwrap();
    assert_eq!(sizes.spends, 16 * 200);
    assert!(sizes.writes < sizes.spends, "{sizes:?}");
    assert_eq!(sizes.buckets.iter().sum::<u64>(), sizes.writes);
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
        .purge_expired(privacypass_core::unix_now() + 1)
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
    assert!(!store.is_remote());
    spend_with_answers_once_per_token(&store);
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

#[test]
fn a_key_whose_end_moved_forward_keeps_its_spends() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path()).unwrap();
        // Spent while the key was redeemable until 100; the configuration then said 500.
        store.spend(&[5; 32], &[1; 32], 100).unwrap();
        store.retain_until(&[5; 32], 500).unwrap();
        // An earlier end never moves it back.
        store.retain_until(&[5; 32], 50).unwrap();
        assert_eq!(store.purge_expired(150).unwrap(), 0);
        assert!(store.is_spent(&[5; 32], &[1; 32]).unwrap());
        // A later spend's own end moves it forward too, in the same synced batch.
        store.spend(&[6; 32], &[1; 32], 100).unwrap();
        store.spend(&[6; 32], &[2; 32], 700).unwrap();
    }
    // The ends are on disk: a restart keeps them.
    let store = RocksStore::open(dir.path()).unwrap();
    assert_eq!(store.purge_expired(600).unwrap(), 1, "key 5 (end 500) only");
    assert!(!store.is_spent(&[5; 32], &[1; 32]).unwrap());
    assert!(store.is_spent(&[6; 32], &[1; 32]).unwrap());
    assert_eq!(store.purge_expired(701).unwrap(), 1);
}

#[test]
fn a_family_without_its_expiry_record_is_still_checked_and_never_purged() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path()).unwrap();
        store.spend(&[7; 32], &[1; 32], 100).unwrap();
    }
    {
        // The expiry record lost (or unreadable): delete it behind the store's back.
        let db = rocksdb::DB::open_cf(
            &rocksdb::Options::default(),
            dir.path(),
            ["default", &format!("spends-{}", hex::encode([7u8; 32]))],
        )
        .unwrap();
        db.delete(format!("expiry/{}", hex::encode([7u8; 32])))
            .unwrap();
    }
    let store = RocksStore::open(dir.path()).unwrap();
    assert_eq!(
        store.spend(&[7; 32], &[1; 32], 100).unwrap(),
        SpendOutcome::AlreadySpent
    );
    assert_eq!(store.purge_expired(u64::MAX - 1).unwrap(), 0);
    assert!(store.is_spent(&[7; 32], &[1; 32]).unwrap());
}

#[test]
fn purges_racing_commits_never_fail_the_spends_of_other_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // One thread keeps making keys that expire at once and purging them ...
    let purger = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let mut key = [0xee; 32];
                key[..4].copy_from_slice(&n.to_be_bytes());
                store.spend(&key, &[1; 32], 10).unwrap();
                store.purge_expired(20).unwrap();
                n += 1;
            }
            n
        })
    };
    // ... while others spend under live keys, through both paths.
    let spenders: Vec<_> = (0..4u8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..300u16 {
                    let mut nonce = [t; 32];
                    nonce[30..].copy_from_slice(&i.to_be_bytes());
                    if i % 2 == 0 {
                        assert_eq!(
                            store.spend(&[t; 32], &nonce, u64::MAX).unwrap(),
                            SpendOutcome::Recorded
                        );
                    } else {
                        let (tx, rx) = std::sync::mpsc::channel();
                        store.spend_with(
                            &[t; 32],
                            &nonce,
                            u64::MAX,
                            Box::new(move |r| tx.send(r).unwrap()),
                        );
                        assert_eq!(rx.recv().unwrap().unwrap(), SpendOutcome::Recorded);
                    }
                }
            })
        })
        .collect();
    for s in spenders {
        s.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(purger.join().unwrap() > 0);
    store.probe_write().unwrap();
    for t in 0..4u8 {
        for i in 0..300u16 {
            let mut nonce = [t; 32];
            nonce[30..].copy_from_slice(&i.to_be_bytes());
            assert!(store.is_spent(&[t; 32], &nonce).unwrap());
        }
    }
}

#[test]
fn a_full_disk_fails_spends_closed_until_the_store_is_reopened() {
    let disk = small_disk::SmallDisk::mount(24);
    let db = disk.path.join("spends");
    let store = RocksStore::open(&db).unwrap();
    let mut acknowledged = Vec::new();
    for i in 0..100u32 {
        let mut nonce = [0u8; 32];
        nonce[..4].copy_from_slice(&i.to_be_bytes());
        store.spend(&[1; 32], &nonce, u64::MAX).unwrap();
        acknowledged.push(nonce);
    }
    disk.fill();
    // Spend until a write fails (RocksDB may have room it reserved earlier).
    let mut failed_at = None;
    for i in 100..2_000_000u32 {
        let mut nonce = [0u8; 32];
        nonce[..4].copy_from_slice(&i.to_be_bytes());
        match store.spend(&[1; 32], &nonce, u64::MAX) {
            Ok(SpendOutcome::Recorded) => acknowledged.push(nonce),
            Ok(SpendOutcome::AlreadySpent) => panic!("a new token answered AlreadySpent"),
            Err(_) => {
                failed_at = Some(i);
                break;
            }
        }
    }
    assert!(failed_at.is_some(), "the disk never filled");
    eprintln!("the first spend refused on the full disk: number {failed_at:?}");
    // Space again, but the store stays closed: every spend fails, health says so.
    disk.free();
    assert!(store.probe_write().is_err());
    let err = store.spend(&[1; 32], &[0xff; 32], u64::MAX).unwrap_err();
    assert!(err.to_string().contains("restart"), "{err}");
    // A spent token still answers AlreadySpent (reads work), never success.
    assert_eq!(
        store.spend(&[1; 32], &acknowledged[0], u64::MAX).unwrap(),
        SpendOutcome::AlreadySpent
    );
    drop(store);
    // Reopened: every acknowledged spend is there and writes work again.
    let store = RocksStore::open(&db).unwrap();
    for nonce in &acknowledged {
        assert!(store.is_spent(&[1; 32], nonce).unwrap());
    }
    store.probe_write().unwrap();
    assert_eq!(
        store.spend(&[1; 32], &[0xff; 32], u64::MAX).unwrap(),
        SpendOutcome::Recorded
    );
}
