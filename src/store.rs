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

    /// Keeps the spends of `key_id` at least until `until` (Unix seconds): the configuration in
    /// force accepts that key's tokens until then. An end the store holds moves forward, never
    /// back, and stays moved (a durable store persists it before answering `Ok`), so no later
    /// purge drops a spend that any configuration loaded since could still accept. Callers
    /// tell the store before they accept tokens under a new configuration.
    fn retain_until(&self, key_id: &TokenKeyId, until: u64) -> Result<(), StoreError>;

    /// Drops every spend whose key stopped being redeemable before `now` (the latest end the
    /// store was given for it, by a spend or by `retain_until`); returns how many keys (or
    /// records, where the store keeps no per-key grouping) were dropped. Callers pass a `now`
    /// with a safety margin taken off: a clock that runs ahead must not drop live spends.
    fn purge_expired(&self, now: u64) -> Result<u64, StoreError>;

    /// Whether a spend could be recorded now, as cheaply as the store can tell (health checks
    /// call it): a small write, or the outcome of the last one.
    fn probe_write(&self) -> Result<(), StoreError>;
}

#[derive(Debug, Default)]
struct SpendMap {
    /// Each spend with the end it was recorded under.
    spends: HashMap<(TokenKeyId, [u8; NONCE_LEN]), u64>,
    /// The latest end `retain_until` gave each key.
    key_ends: HashMap<TokenKeyId, u64>,
}

impl SpendMap {
    /// Drops the spends that neither their own end nor their key's reaches past `now`.
    fn purge(&mut self, now: u64) -> usize {
        let before = self.spends.len();
        let key_ends = &self.key_ends;
        self.spends.retain(|(key_id, _), exp| {
            *exp > now || key_ends.get(key_id).is_some_and(|end| *end > now)
        });
        self.key_ends.retain(|_, end| *end > now);
        before - self.spends.len()
    }
}

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
            spends: Mutex::new(SpendMap::default()),
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
        let mut map = self.lock()?;
        let k = (*key_id, *nonce);
        if map.spends.contains_key(&k) {
            return Ok(SpendOutcome::AlreadySpent);
        }
        if map.spends.len() >= self.capacity {
            map.purge(crate::unix_now());
            if map.spends.len() >= self.capacity {
                return Err(StoreError(format!(
                    "memory store full ({} spends)",
                    self.capacity
                )));
            }
        }
        map.spends.insert(k, expires_at);
        Ok(SpendOutcome::Recorded)
    }

    /// A spend here takes a lock and a map insert: callers need no thread of their own.
    fn spend_with_blocks(&self) -> bool {
        false
    }

    fn is_spent(&self, key_id: &TokenKeyId, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError> {
        Ok(self.lock()?.spends.contains_key(&(*key_id, *nonce)))
    }

    fn retain_until(&self, key_id: &TokenKeyId, until: u64) -> Result<(), StoreError> {
        let mut map = self.lock()?;
        let end = map.key_ends.entry(*key_id).or_insert(until);
        *end = (*end).max(until);
        Ok(())
    }

    fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        Ok(self.lock()?.purge(now) as u64)
    }

    fn probe_write(&self) -> Result<(), StoreError> {
        self.lock().map(drop)
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
