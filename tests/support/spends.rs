//! Checks every spend store must pass, shared by the stores' tests.

use std::sync::{Arc, Barrier};

use privacypass_core::{SpendOutcome, SpendStore};

/// 64 threads redeem one token at once, for 20 tokens: exactly one Recorded each time, and
/// every other thread AlreadySpent (no errors).
pub fn exactly_once_under_contention<S: SpendStore + 'static>(store: &Arc<S>) {
    for token in 0..20u8 {
        let barrier = Arc::new(Barrier::new(64));
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.spend(&[3; 32], &[token; 32], u64::MAX).unwrap()
                })
            })
            .collect();
        let recorded = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|o| *o == SpendOutcome::Recorded)
            .count();
        assert_eq!(recorded, 1, "token {token}");
        assert!(store.is_spent(&[3; 32], &[token; 32]).unwrap());
    }
}

/// `spend_with` from 8 threads at once, 500 calls each (250 tokens spent by every thread, 250
/// by each thread alone): every call answered once, one Recorded per token, and a `spend` of a
/// token spent that way answers AlreadySpent.
pub fn spend_with_answers_once_per_token<S: SpendStore + 'static>(store: &Arc<S>) {
    use std::sync::mpsc;
    assert!(store.spend_with_returns_at_once());
    let (tx, rx) = mpsc::channel();
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let (store, tx, barrier) = (store.clone(), tx.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..500u16 {
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
}
