//! The spend store: where a redemption is recorded so that each token is spent exactly once.
//!
//! A spend is identified by (token_key_id, nonce). Implementations are synchronous and shared
//! by the daemon and the C library; each answers `Recorded` only once the spend is as durable
//! as the store promises, and an error whenever it cannot be sure: callers fail closed.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::keys::TokenKeyId;
use crate::wire::NONCE_LEN;

/// What recording a spend found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendOutcome {
    /// First spend: recorded.
    Recorded,
    /// Spent before: nothing changed.
    AlreadySpent,
}

/// The store could not answer for certain. Nothing may be acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("spend store unavailable: {0}")]
pub struct StoreError(pub String);

/// How `SpendStore::spend_with` answers.
pub type SpendCallback = Box<dyn FnOnce(Result<SpendOutcome, StoreError>) + Send>;

pub trait SpendStore: Send + Sync {
    /// Records the spend of `nonce` under `key_id` unless it was spent before. `expires_at`
    /// (Unix seconds) is when the key stops being redeemable: the record may go after it.
    fn spend(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
    ) -> Result<SpendOutcome, StoreError>;

    /// Records a spend like `spend` and answers through `done`. When `spend_with_blocks` is
    /// false the caller is not blocked: the store answers from a thread of its own (or at once).
    /// The default runs `spend` on the calling thread.
    fn spend_with(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
        done: SpendCallback,
    ) {
        done(self.spend(key_id, nonce, expires_at));
    }

    /// Whether `spend_with` may block the calling thread (an fsync, a network round trip).
    fn spend_with_blocks(&self) -> bool {
        true
    }

    /// Whether the spend is recorded.
    fn is_spent(&self, key_id: &TokenKeyId, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError>;

    /// Drops every spend whose key stopped being redeemable before `now`; returns how many
    /// keys (or records, where the store keeps no per-key grouping) were dropped.
    fn purge_expired(&self, now: u64) -> Result<u64, StoreError>;
}

type SpendMap = HashMap<(TokenKeyId, [u8; NONCE_LEN]), u64>;

/// A process-local store with a bounded number of records. When full, expired records are
/// purged; if it is still full the spend is refused rather than forgotten.
#[derive(Debug)]
pub struct MemoryStore {
    capacity: usize,
    spends: Mutex<SpendMap>,
}

/// Default capacity of `MemoryStore`: about 100 MB of records.
pub const DEFAULT_MEMORY_CAPACITY: usize = 1_000_000;

impl MemoryStore {
    pub fn new(capacity: usize) -> Self {
        MemoryStore {
            capacity,
            spends: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, SpendMap>, StoreError> {
        self.spends
            .lock()
            .map_err(|_| StoreError("memory store lock poisoned".into()))
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(DEFAULT_MEMORY_CAPACITY)
    }
}

impl SpendStore for MemoryStore {
    fn spend(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
    ) -> Result<SpendOutcome, StoreError> {
        let mut spends = self.lock()?;
        let k = (*key_id, *nonce);
        if spends.contains_key(&k) {
            return Ok(SpendOutcome::AlreadySpent);
        }
        if spends.len() >= self.capacity {
            let now = crate::unix_now();
            spends.retain(|_, exp| *exp > now);
            if spends.len() >= self.capacity {
                return Err(StoreError(format!(
                    "memory store full ({} spends)",
                    self.capacity
                )));
            }
        }
        spends.insert(k, expires_at);
        Ok(SpendOutcome::Recorded)
    }

    /// A spend here takes a lock and a map insert: callers need no thread of their own.
    fn spend_with_blocks(&self) -> bool {
        false
    }

    fn is_spent(&self, key_id: &TokenKeyId, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError> {
        Ok(self.lock()?.contains_key(&(*key_id, *nonce)))
    }

    fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        let mut spends = self.lock()?;
        let before = spends.len();
        spends.retain(|_, exp| *exp > now);
        Ok((before - spends.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_spends_once_and_stays_bounded() {
        let store = MemoryStore::new(2);
        let now = crate::unix_now();
        assert_eq!(
            store.spend(&[1; 32], &[1; 32], now + 100).unwrap(),
            SpendOutcome::Recorded
        );
        assert_eq!(
            store.spend(&[1; 32], &[1; 32], now + 100).unwrap(),
            SpendOutcome::AlreadySpent
        );
        assert_eq!(
            store.spend(&[1; 32], &[2; 32], now + 100).unwrap(),
            SpendOutcome::Recorded
        );
        assert!(store.spend(&[1; 32], &[3; 32], now + 100).is_err());
        assert!(store.is_spent(&[1; 32], &[2; 32]).unwrap());
        assert_eq!(store.purge_expired(now + 200).unwrap(), 2);
        assert_eq!(
            store.spend(&[1; 32], &[3; 32], now + 100).unwrap(),
            SpendOutcome::Recorded
        );
    }
}
