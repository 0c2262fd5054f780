//! Request state beside the spends: Idempotency-Key records and rate-limit counters.
//!
//! The daemon keeps them in the same place as its spends: in process (`memory:`), persisted in
//! RocksDB (idempotency records survive a restart), or in Redis, where every daemon behind a load
//! balancer sees the same records and counters.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use privacypass_core::{unix_now, StoreError};

/// A SHA-256 digest of the request an Idempotency-Key was first used with.
pub type Fingerprint = [u8; 32];

/// What claiming an Idempotency-Key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: the caller holds it now and must `complete` or `release` it.
    Claimed,
    /// Another request holds the key and has not completed.
    InFlight,
    /// The key completed for a different request.
    Mismatch,
    /// The key completed for this same request: its stored response.
    Replay(Vec<u8>),
}

/// Idempotency records: claim a key, then complete it with the response to replay, or release it
/// so that a retry runs again.
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request with `fingerprint`. A claim that is neither completed nor
    /// released lapses after `lease_secs` (a crashed holder does not lock the key for good).
    fn claim(
        &self,
        key: &str,
        fingerprint: &Fingerprint,
        lease_secs: u64,
    ) -> Result<Claim, StoreError>;

    /// Stores the response of the claimed `key`, kept for `ttl_secs`.
    fn complete(
        &self,
        key: &str,
        fingerprint: &Fingerprint,
        response: &[u8],
        ttl_secs: u64,
    ) -> Result<(), StoreError>;

    /// Gives up a claim without a response to replay.
    fn release(&self, key: &str) -> Result<(), StoreError>;
}

/// Rate-limit counters in fixed windows.
pub trait RateLimitStore: Send + Sync {
    /// Adds `hits` to `bucket` in the window that starts at `window_start` (Unix seconds) and
    /// lasts `window_secs`; returns the window's count after adding.
    fn add(
        &self,
        bucket: &str,
        window_start: u64,
        window_secs: u64,
        hits: u64,
    ) -> Result<u64, StoreError>;
}

/// An idempotency record as stored: the fingerprint, then the response (empty while in flight).
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub fingerprint: Fingerprint,
    pub response: Option<Vec<u8>>,
    pub expires_at: u64,
}

impl Record {
    /// What a claim finds in this record.
    pub fn claim_outcome(&self, fingerprint: &Fingerprint) -> Claim {
        match &self.response {
            None => Claim::InFlight,
            Some(_) if self.fingerprint != *fingerprint => Claim::Mismatch,
            Some(response) => Claim::Replay(response.clone()),
        }
    }

    /// The stored bytes of a completed record: expiry (8 bytes, big-endian), fingerprint,
    /// response.
    pub fn encode_completed(
        fingerprint: &Fingerprint,
        response: &[u8],
        expires_at: u64,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 + response.len());
        out.extend_from_slice(&expires_at.to_be_bytes());
        out.extend_from_slice(fingerprint);
        out.extend_from_slice(response);
        out
    }

    pub fn decode_completed(bytes: &[u8]) -> Option<Record> {
        let expires_at = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let fingerprint = bytes.get(8..40)?.try_into().ok()?;
        Some(Record {
            fingerprint,
            response: Some(bytes[40..].to_vec()),
            expires_at,
        })
    }
}

/// Most records a process-local table holds before it drops expired ones.
const MEMORY_STATE_SWEEP: usize = 100_000;

/// A table of entries that each carry a time (an expiry, a window's start), kept in order of
/// that time as well, so that dropping the entries older than some time visits only those: each
/// entry is visited once when it goes, and a sweep that finds nothing to drop stops at the first.
#[derive(Debug)]
struct TimedTable<V> {
    entries: HashMap<Arc<str>, (u64, V)>,
    order: BTreeSet<(u64, Arc<str>)>,
    /// Entries a sweep has looked at.
    #[cfg(test)]
    visited: usize,
}

impl<V> Default for TimedTable<V> {
    fn default() -> Self {
        TimedTable {
            entries: HashMap::new(),
            order: BTreeSet::new(),
            #[cfg(test)]
            visited: 0,
        }
    }
}

impl<V> TimedTable<V> {
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry of `key`: its time and value.
    fn get(&self, key: &str) -> Option<&(u64, V)> {
        self.entries.get(key)
    }

    /// Sets `key` to `value` at `time`, replacing what it held.
    fn insert(&mut self, key: &str, time: u64, value: V) {
        let shared = match self.entries.get_key_value(key) {
            Some((shared, (old, _))) => {
                let shared = Arc::clone(shared);
                if *old != time {
                    self.order.remove(&(*old, Arc::clone(&shared)));
                    self.order.insert((time, Arc::clone(&shared)));
                }
                shared
            }
            None => {
                let shared: Arc<str> = Arc::from(key);
                self.order.insert((time, Arc::clone(&shared)));
                shared
            }
        };
        self.entries.insert(shared, (time, value));
    }

    fn remove(&mut self, key: &str) {
        if let Some((shared, (time, _))) = self.entries.remove_entry(key) {
            self.order.remove(&(time, shared));
        }
    }

    /// Drops the entries whose time is before `bound`.
    fn drop_before(&mut self, bound: u64) {
        while let Some((time, _)) = self.order.first() {
            if *time >= bound {
                break;
            }
            if let Some((_, key)) = self.order.pop_first() {
                self.entries.remove(&key);
                #[cfg(test)]
                {
                    self.visited += 1;
                }
            }
        }
    }
}

/// Idempotency records and rate-limit counters in process memory.
#[derive(Debug, Default)]
pub struct MemoryState {
    /// Records by Idempotency-Key, timed by their expiry.
    records: Mutex<TimedTable<Record>>,
    /// Hits by rate-limit bucket, timed by the start of their window.
    counters: Mutex<TimedTable<u64>>,
}

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&self) -> Result<MutexGuard<'_, TimedTable<Record>>, StoreError> {
        self.records
            .lock()
            .map_err(|_| StoreError("idempotency table lock poisoned".into()))
    }

    /// Claims in memory; `persisted` looks up a completed record kept elsewhere (RocksDB).
    pub(crate) fn claim_with(
        &self,
        key: &str,
        fingerprint: &Fingerprint,
        lease_secs: u64,
        persisted: impl FnOnce() -> Result<Option<Record>, StoreError>,
    ) -> Result<Claim, StoreError> {
        let now = unix_now();
        let mut records = self.records()?;
        if records.len() >= MEMORY_STATE_SWEEP {
            // A record has expired once `expires_at <= now`: drop every time before `now + 1`.
            records.drop_before(now.saturating_add(1));
        }
        if let Some((_, record)) = records.get(key).filter(|(_, r)| r.expires_at > now) {
            return Ok(record.claim_outcome(fingerprint));
        }
        if let Some(record) = persisted()?.filter(|r| r.expires_at > now) {
            return Ok(record.claim_outcome(fingerprint));
        }
        let expires_at = now + lease_secs;
        records.insert(
            key,
            expires_at,
            Record {
                fingerprint: *fingerprint,
                response: None,
                expires_at,
            },
        );
        Ok(Claim::Claimed)
    }

    /// Forgets an in-flight claim (its completed record is kept elsewhere, or nowhere).
    pub(crate) fn forget(&self, key: &str) -> Result<(), StoreError> {
        self.records()?.remove(key);
        Ok(())
    }
}

impl IdempotencyStore for MemoryState {
    fn claim(
        &self,
        key: &str,
        fingerprint: &Fingerprint,
        lease_secs: u64,
    ) -> Result<Claim, StoreError> {
        self.claim_with(key, fingerprint, lease_secs, || Ok(None))
    }

    fn complete(
        &self,
        key: &str,
        fingerprint: &Fingerprint,
        response: &[u8],
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        let expires_at = unix_now() + ttl_secs;
        self.records()?.insert(
            key,
            expires_at,
            Record {
                fingerprint: *fingerprint,
                response: Some(response.to_vec()),
                expires_at,
            },
        );
        Ok(())
    }

    fn release(&self, key: &str) -> Result<(), StoreError> {
        self.forget(key)
    }
}

impl RateLimitStore for MemoryState {
    fn add(
        &self,
        bucket: &str,
        window_start: u64,
        _window_secs: u64,
        hits: u64,
    ) -> Result<u64, StoreError> {
        let mut counters = self
            .counters
            .lock()
            .map_err(|_| StoreError("rate-limit table lock poisoned".into()))?;
        if counters.len() >= MEMORY_STATE_SWEEP {
            counters.drop_before(window_start);
        }
        let count = match counters.get(bucket) {
            Some((start, count)) if *start == window_start => count.saturating_add(hits),
            _ => hits,
        };
        counters.insert(bucket, window_start, count);
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn claims_replays_and_refuses_mismatches() {
        let state = MemoryState::new();
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_eq!(state.claim("k", &a, 60).unwrap(), Claim::Claimed);
        assert_eq!(state.claim("k", &a, 60).unwrap(), Claim::InFlight);
        state.complete("k", &a, b"first", 60).unwrap();
        assert_eq!(
            state.claim("k", &a, 60).unwrap(),
            Claim::Replay(b"first".to_vec())
        );
        assert_eq!(state.claim("k", &b, 60).unwrap(), Claim::Mismatch);
        assert_eq!(state.claim("other", &b, 60).unwrap(), Claim::Claimed);
        state.release("other").unwrap();
        assert_eq!(state.claim("other", &b, 60).unwrap(), Claim::Claimed);
    }

    #[test]
    fn counters_reset_with_the_window() {
        let state = MemoryState::new();
        assert_eq!(state.add("key", 100, 10, 1).unwrap(), 1);
        assert_eq!(state.add("key", 100, 10, 3).unwrap(), 4);
        assert_eq!(state.add("key", 110, 10, 1).unwrap(), 1);
        assert_eq!(state.add("other", 110, 10, 1).unwrap(), 1);
    }

    fn visited(state: &MemoryState) -> usize {
        state.records.lock().unwrap().visited + state.counters.lock().unwrap().visited
    }

    /// A table past its sweep size answers without looking at every record it holds.
    #[test]
    fn a_full_table_does_not_rescan_its_records() {
        let state = MemoryState::new();
        let fp = [1u8; 32];
        for i in 0..MEMORY_STATE_SWEEP {
            assert_eq!(
                state.claim(&format!("k{i}"), &fp, 3600).unwrap(),
                Claim::Claimed
            );
        }
        for i in 0..100 {
            assert_eq!(
                state.claim(&format!("n{i}"), &fp, 3600).unwrap(),
                Claim::Claimed
            );
            assert_eq!(
                state.claim(&format!("k{i}"), &fp, 3600).unwrap(),
                Claim::InFlight
            );
        }
        state.complete("k0", &fp, b"done", 3600).unwrap();
        assert_eq!(
            state.claim("k0", &fp, 3600).unwrap(),
            Claim::Replay(b"done".to_vec())
        );
        assert_eq!(visited(&state), 0);

        for i in 0..MEMORY_STATE_SWEEP {
            assert_eq!(state.add(&format!("b{i}"), 100, 10, 1).unwrap(), 1);
        }
        for i in 0..100 {
            assert_eq!(state.add(&format!("c{i}"), 100, 10, 1).unwrap(), 1);
            assert_eq!(state.add(&format!("b{i}"), 100, 10, 1).unwrap(), 2);
        }
        assert_eq!(visited(&state), 0);
    }

    /// Expired records and counters of past windows are dropped, each visited about once.
    #[test]
    fn expired_records_are_dropped_once_each() {
        let state = MemoryState::new();
        let fp = [1u8; 32];
        // A lease of 0 seconds has lapsed at once.
        for i in 0..MEMORY_STATE_SWEEP {
            assert_eq!(
                state.claim(&format!("k{i}"), &fp, 0).unwrap(),
                Claim::Claimed
            );
        }
        state.complete("kept", &fp, b"r", 3600).unwrap();
        for i in 0..100 {
            assert_eq!(
                state.claim(&format!("n{i}"), &fp, 3600).unwrap(),
                Claim::Claimed
            );
        }
        assert_eq!(
            state.claim("kept", &fp, 60).unwrap(),
            Claim::Replay(b"r".to_vec())
        );
        assert_eq!(state.claim("k7", &fp, 3600).unwrap(), Claim::Claimed);
        let after_records = visited(&state);
        assert!(
            after_records <= MEMORY_STATE_SWEEP + 2,
            "{after_records} visits"
        );

        for i in 0..MEMORY_STATE_SWEEP {
            state.add(&format!("b{i}"), 100, 10, 1).unwrap();
        }
        // A later window: the counters of the earlier one go, the count starts again.
        for i in 0..100 {
            assert_eq!(state.add(&format!("b{i}"), 110, 10, 1).unwrap(), 1);
        }
        assert_eq!(state.add("b5", 110, 10, 1).unwrap(), 2);
        let counters = visited(&state) - after_records;
        assert!(counters <= MEMORY_STATE_SWEEP + 100, "{counters} visits");
    }

    #[test]
    fn completed_records_round_trip() {
        let bytes = Record::encode_completed(&[7; 32], b"resp", 99);
        let record = Record::decode_completed(&bytes).unwrap();
        assert_eq!(record.expires_at, 99);
        assert_eq!(
            record.claim_outcome(&[7; 32]),
            Claim::Replay(b"resp".to_vec())
        );
        assert_eq!(record.claim_outcome(&[8; 32]), Claim::Mismatch);
        assert!(Record::decode_completed(&bytes[..39]).is_none());
    }
}
