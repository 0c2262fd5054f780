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
