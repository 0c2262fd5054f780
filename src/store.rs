//! The spend store: where a redemption is recorded so that each token is spent exactly once.
//!
//! A spend is identified by (token_key_id, nonce). Implementations are synchronous and shared
//! by the daemon and the C library; each answers `Recorded` only once the spend is as durable
//! as the store promises, and an error whenever it cannot be sure: callers fail closed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Upper bounds of the buckets of `CommitSizes`: spends carried by one durable write.
pub const COMMIT_SIZE_BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// How many spends each durable write of a group-committing store carried, since it opened: the
/// fsyncs a spend shares. `buckets[i]` counts the writes of more than `COMMIT_SIZE_BOUNDS[i - 1]`
/// and at most `COMMIT_SIZE_BOUNDS[i]` spends; the last bucket the writes above the last bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitSizes {
    pub buckets: [u64; COMMIT_SIZE_BOUNDS.len() + 1],
    /// Durable writes.
    pub writes: u64,
    /// Spends in them.
    pub spends: u64,
}

impl CommitSizes {
    /// The counts since `earlier` (a snapshot of the same store).
    pub fn since(&self, earlier: &CommitSizes) -> CommitSizes {
        let mut buckets = self.buckets;
        for (b, e) in buckets.iter_mut().zip(earlier.buckets) {
            *b = b.saturating_sub(e);
        }
        CommitSizes {
            buckets,
            writes: self.writes.saturating_sub(earlier.writes),
            spends: self.spends.saturating_sub(earlier.spends),
        }
    }

    /// Spends per durable write, on average (0 with no write).
    pub fn mean(&self) -> f64 {
        if self.writes == 0 {
            0.0
        } else {
            self.spends as f64 / self.writes as f64
        }
    }

    /// The bound of the bucket holding the `q`-quantile write (`u64::MAX` past the last bound).
    pub fn quantile_bound(&self, q: f64) -> u64 {
        let rank = (self.writes as f64 * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return COMMIT_SIZE_BOUNDS.get(i).copied().unwrap_or(u64::MAX);
            }
        }
        0
    }
}

/// `CommitSizes` kept in atomics, for a store to count its writes as it makes them.
#[derive(Debug, Default)]
pub struct CommitSizeCounter {
    buckets: [AtomicU64; COMMIT_SIZE_BOUNDS.len() + 1],
    writes: AtomicU64,
    spends: AtomicU64,
}

impl CommitSizeCounter {
    /// Counts one durable write of `spends` spends.
    pub fn record(&self, spends: u64) {
        let i = COMMIT_SIZE_BOUNDS
            .iter()
            .position(|b| spends <= *b)
            .unwrap_or(COMMIT_SIZE_BOUNDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.spends.fetch_add(spends, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CommitSizes {
        CommitSizes {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            writes: self.writes.load(Ordering::Relaxed),
            spends: self.spends.load(Ordering::Relaxed),
        }
    }
}

pub trait SpendStore: Send + Sync {
    /// Records the spend of `nonce` under `key_id` unless it was spent before. `expires_at`
    /// (Unix seconds) is when the key stops being redeemable: the record may go after it.
    fn spend(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
    ) -> Result<SpendOutcome, StoreError>;

    /// Records a spend like `spend` and answers through `done`. When
    /// `spend_with_returns_at_once` says so the caller is not blocked: the store answers from a
    /// thread of its own (or at once). The default runs `spend` on the calling thread.
    fn spend_with(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
        done: SpendCallback,
    ) {
        done(self.spend(key_id, nonce, expires_at));
    }

    /// Whether the store is across the network: each of its calls (`spend_with` included)
    /// waits on a round trip, so an async caller runs them on a thread of its own. A local
    /// store's calls are quick, and its spend's fsync is answered from the store's own thread
    /// through `spend_with`. The one notion of "remote" for the spends and for everything a
    /// daemon keeps beside them.
    fn is_remote(&self) -> bool {
        true
    }

    /// Whether `spend_with` returns without waiting for the spend, so that an async caller may
    /// call it on its own thread: a local store (its spend is quick, or answered from the
    /// store's committer), or a remote one whose requests go out from threads of its own. The
    /// default `spend_with` runs `spend` on the calling thread, which is quick only for a local
    /// store.
    fn spend_with_returns_at_once(&self) -> bool {
        !self.is_remote()
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

    /// The sizes of the store's durable writes so far, for a store that writes concurrent
    /// spends together (group commit); `None` for one that writes each on its own.
    fn commit_sizes(&self) -> Option<CommitSizes> {
        None
    }
}

type Nonce = [u8; NONCE_LEN];

/// The spends of a `MemoryStore`, indexed so that a purge visits only what it may drop.
///
/// Every spend sits in exactly one of two places: under its own end in `by_end`, or, once a
/// purge found its own end passed while its key's end (`retain_until`) was still ahead, under
/// its key in `held`. A purge takes the ends that passed from the front of `by_end` and of
/// `key_end_order`, so a spend is visited when its own end passes and at most once more when its
/// key's end does; a purge that finds nothing to drop looks at two first entries and stops.
#[derive(Debug, Default)]
struct SpendMap {
    /// Each key's spends: every nonce with the end it was recorded under.
    spends: HashMap<TokenKeyId, HashMap<Nonce, u64>>,
    /// How many spends `spends` holds.
    len: usize,
    /// The spends no purge has yet found past their own end, under that end.
    by_end: BTreeMap<u64, HashMap<TokenKeyId, Vec<Nonce>>>,
    /// Spends past their own end that their key's end still keeps.
    held: HashMap<TokenKeyId, Vec<Nonce>>,
    /// The latest end `retain_until` gave each key, and the same ends in order.
    key_ends: HashMap<TokenKeyId, u64>,
    key_end_order: BTreeSet<(u64, TokenKeyId)>,
    /// Spends a purge has looked at.
    #[cfg(test)]
    visited: usize,
}

impl SpendMap {
    fn contains(&self, key_id: &TokenKeyId, nonce: &Nonce) -> bool {
        self.spends
            .get(key_id)
            .is_some_and(|nonces| nonces.contains_key(nonce))
    }

    fn insert(&mut self, key_id: &TokenKeyId, nonce: &Nonce, end: u64) {
        self.spends.entry(*key_id).or_default().insert(*nonce, end);
        self.by_end
            .entry(end)
            .or_default()
            .entry(*key_id)
            .or_default()
            .push(*nonce);
        self.len += 1;
    }

    fn remove(&mut self, key_id: &TokenKeyId, nonce: &Nonce) {
        if let Some(nonces) = self.spends.get_mut(key_id) {
            if nonces.remove(nonce).is_some() {
                self.len -= 1;
            }
            if nonces.is_empty() {
                self.spends.remove(key_id);
            }
        }
    }

    fn retain_until(&mut self, key_id: &TokenKeyId, until: u64) {
        match self.key_ends.get(key_id) {
            Some(end) if *end >= until => {}
            old => {
                if let Some(old) = old {
                    self.key_end_order.remove(&(*old, *key_id));
                }
                self.key_end_order.insert((until, *key_id));
                self.key_ends.insert(*key_id, until);
            }
        }
    }

    fn kept_by_key(&self, key_id: &TokenKeyId, now: u64) -> bool {
        self.key_ends.get(key_id).is_some_and(|end| *end > now)
    }

    /// Drops the spends that neither their own end nor their key's reaches past `now`.
    fn purge(&mut self, now: u64) -> usize {
        let before = self.len;
        // Keys whose end passed: the spends they held go, or wait for their own end again.
        while let Some(&(end, key_id)) = self.key_end_order.first() {
            if end > now {
                break;
            }
            self.key_end_order.remove(&(end, key_id));
            self.key_ends.remove(&key_id);
            let held = self.held.remove(&key_id).unwrap_or_default();
            self.count_visits(held.len());
            for nonce in held {
                let own_end = self
                    .spends
                    .get(&key_id)
                    .and_then(|n| n.get(&nonce))
                    .copied();
                match own_end {
                    Some(own_end) if own_end > now => self
                        .by_end
                        .entry(own_end)
                        .or_default()
                        .entry(key_id)
                        .or_default()
                        .push(nonce),
                    _ => self.remove(&key_id, &nonce),
                }
            }
        }
        // Spends whose own end passed: they go unless their key's end keeps them.
        while let Some(entry) = self.by_end.first_entry() {
            if *entry.key() > now {
                break;
            }
            for (key_id, nonces) in entry.remove() {
                self.count_visits(nonces.len());
                if self.kept_by_key(&key_id, now) {
                    self.held.entry(key_id).or_default().extend(nonces);
                } else {
                    for nonce in &nonces {
                        self.remove(&key_id, nonce);
                    }
                }
            }
        }
        before - self.len
    }

    #[cfg(test)]
    fn count_visits(&mut self, n: usize) {
        self.visited += n;
    }

    #[cfg(not(test))]
    fn count_visits(&mut self, _: usize) {}
}

/// A process-local store with a bounded number of records. When full, expired records are
/// purged; if it is still full the spend is refused rather than forgotten. Purging costs
/// amortized O(1) per record dropped, and a full store with nothing to drop refuses at once.
///
/// The spends live in this process's memory only: a copy made by `fork()` would accept each
/// token once more in every child, so a store used from any process but the one that made it
/// answers `StoreError` for everything.
#[derive(Debug)]
pub struct MemoryStore {
    capacity: usize,
    /// The process that made the store: the only one whose spends it holds.
    pid: u32,
    spends: Mutex<SpendMap>,
}

/// Default capacity of `MemoryStore`: about 100 MB of records.
pub const DEFAULT_MEMORY_CAPACITY: usize = 1_000_000;

impl MemoryStore {
    pub fn new(capacity: usize) -> Self {
        MemoryStore {
            capacity,
            pid: std::process::id(),
            spends: Mutex::new(SpendMap::default()),
        }
    }

    /// The spends, in the process that made the store only.
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, SpendMap>, StoreError> {
        let pid = std::process::id();
        if pid != self.pid {
            return Err(StoreError(format!(
                "memory store made in process {} used in process {pid} (after fork()?): its \
                 spends are the other process's; open the redeemer in the process that uses it",
                self.pid
            )));
        }
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
        if map.contains(key_id, nonce) {
            return Ok(SpendOutcome::AlreadySpent);
        }
        if map.len >= self.capacity {
            map.purge(crate::unix_now());
            if map.len >= self.capacity {
                return Err(StoreError(format!(
                    "memory store full ({} spends)",
                    self.capacity
                )));
            }
        }
        map.insert(key_id, nonce, expires_at);
        Ok(SpendOutcome::Recorded)
    }

    /// A spend here takes a lock and a map insert: callers need no thread of their own.
    fn is_remote(&self) -> bool {
        false
    }

    fn is_spent(&self, key_id: &TokenKeyId, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError> {
        Ok(self.lock()?.contains(key_id, nonce))
    }

    fn retain_until(&self, key_id: &TokenKeyId, until: u64) -> Result<(), StoreError> {
        self.lock()?.retain_until(key_id, until);
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

    /// A nonce made of a number.
    fn nonce(i: usize) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n[..8].copy_from_slice(&(i as u64).to_be_bytes());
        n
    }

    fn visited(store: &MemoryStore) -> usize {
        store.spends.lock().unwrap().visited
    }

    #[test]
    fn commit_sizes_bucket_each_write_and_tell_quantiles() {
        let counter = CommitSizeCounter::default();
        let before = counter.snapshot();
        for spends in [1, 1, 2, 3, 4, 5, 64, 65, 2000] {
            counter.record(spends);
        }
        let sizes = counter.snapshot().since(&before);
        assert_eq!(sizes.writes, 9);
        assert_eq!(sizes.spends, 2145);
        // 1, 1 | 2 | 3, 4 | 5 | 64 | 65 | 2000 past the last bound.
        assert_eq!(sizes.buckets, [2, 1, 2, 1, 0, 0, 1, 1, 0, 0, 0, 1]);
        assert_eq!(sizes.quantile_bound(0.5), 4);
        assert_eq!(sizes.quantile_bound(0.1), 1);
        assert_eq!(sizes.quantile_bound(1.0), u64::MAX);
        assert!((sizes.mean() - 2145.0 / 9.0).abs() < 1e-9);
        let later = counter.snapshot();
        counter.record(7);
        let one = counter.snapshot().since(&later);
        assert_eq!((one.writes, one.spends, one.buckets[3]), (1, 7, 1));
        assert_eq!(CommitSizes::default().quantile_bound(0.99), 0);
    }

    #[test]
    fn a_full_store_refuses_then_accepts_once_spends_expire() {
        let store = MemoryStore::new(3);
        let now = crate::unix_now();
        let (key, other) = ([1; 32], [2; 32]);
        let recorded = Ok(SpendOutcome::Recorded);
        assert_eq!(store.spend(&key, &nonce(1), now + 3600), recorded);
        // Recorded under ends that have passed: a purge may drop them, unless their key's end
        // (retain_until) is still ahead.
        assert_eq!(store.spend(&key, &nonce(2), 1), recorded);
        assert_eq!(store.spend(&other, &nonce(3), 2), recorded);
        store.retain_until(&other, now + 3600).unwrap();

        // Full: the spend purges what may go and is recorded.
        assert_eq!(store.spend(&key, &nonce(4), now + 3600), recorded);
        assert!(!store.is_spent(&key, &nonce(2)).unwrap());
        assert!(store.is_spent(&other, &nonce(3)).unwrap());

        // Full with nothing to drop: refused, and nothing forgotten.
        for i in 5..10 {
            let refused = store.spend(&key, &nonce(i), now + 3600);
            assert!(matches!(refused, Err(StoreError(ref m)) if m.contains("full")));
        }
        assert_eq!(
            store.spend(&key, &nonce(1), now + 3600),
            Ok(SpendOutcome::AlreadySpent)
        );
        for (k, n) in [(key, 1), (other, 3), (key, 4)] {
            assert!(store.is_spent(&k, &nonce(n)).unwrap());
        }
        assert!(!store.is_spent(&key, &nonce(5)).unwrap());

        // Before the ends nothing goes; at them everything does, and the store takes spends
        // again.
        assert_eq!(store.purge_expired(now + 3599).unwrap(), 0);
        assert_eq!(store.purge_expired(now + 3600).unwrap(), 3);
        assert_eq!(store.spend(&key, &nonce(5), now + 3600), recorded);
    }

    #[test]
    fn retain_until_keeps_spends_past_their_own_end() {
        let store = MemoryStore::new(10);
        let (key, other) = ([1; 32], [2; 32]);
        store.spend(&key, &nonce(1), 100).unwrap();
        store.spend(&other, &nonce(2), 100).unwrap();
        store.retain_until(&key, 200).unwrap();
        // An earlier end does not move the key's end back.
        store.retain_until(&key, 150).unwrap();
        assert_eq!(store.purge_expired(99).unwrap(), 0);
        assert_eq!(store.purge_expired(100).unwrap(), 1);
        assert!(!store.is_spent(&other, &nonce(2)).unwrap());
        assert_eq!(store.purge_expired(199).unwrap(), 0);
        assert!(store.is_spent(&key, &nonce(1)).unwrap());
        // A spend recorded now under the key, with an end beyond the key's, outlives it.
        store.spend(&key, &nonce(3), 300).unwrap();
        assert_eq!(store.purge_expired(200).unwrap(), 1);
        assert!(!store.is_spent(&key, &nonce(1)).unwrap());
        assert!(store.is_spent(&key, &nonce(3)).unwrap());
        assert_eq!(store.purge_expired(300).unwrap(), 1);
        // A purge with an earlier `now` than a previous one drops nothing it should keep.
        store.spend(&key, &nonce(4), 250).unwrap();
        assert_eq!(store.purge_expired(249).unwrap(), 0);
        assert!(store.is_spent(&key, &nonce(4)).unwrap());
    }

    /// A full store answers a spend without looking at the spends it holds: refusing costs
    /// the same with 200,000 spends as with one.
    #[test]
    fn a_full_store_refuses_without_visiting_its_spends() {
        const N: usize = 200_000;
        let store = MemoryStore::new(N);
        let now = crate::unix_now();
        for i in 0..N {
            store.spend(&[1; 32], &nonce(i), now + 3600).unwrap();
        }
        for i in N..N + 100 {
            assert!(store.spend(&[1; 32], &nonce(i), now + 3600).is_err());
        }
        assert_eq!(visited(&store), 0);
    }

    /// Purging visits a spend when its own end passes and, if its key's end kept it, once
    /// more when that passes: never on every spend of a full store.
    #[test]
    fn purging_visits_each_spend_at_most_twice() {
        const N: usize = 200_000;
        let store = MemoryStore::new(N);
        let now = crate::unix_now();
        let (a, b) = ([1; 32], [2; 32]);
        store.retain_until(&b, now + 3600).unwrap();
        for i in 0..N / 2 {
            store.spend(&a, &nonce(i), 1).unwrap();
            store.spend(&b, &nonce(i), 2).unwrap();
        }
        // Full: a's spends go, b's stay (its key's end is ahead).
        assert_eq!(
            store.spend(&a, &nonce(N), now + 3600),
            Ok(SpendOutcome::Recorded)
        );
        for i in N + 1..N + N / 2 {
            store.spend(&a, &nonce(i), now + 3600).unwrap();
        }
        for i in 0..100 {
            assert!(store.spend(&a, &nonce(2 * N + i), now + 3600).is_err());
        }
        assert!(store.is_spent(&b, &nonce(7)).unwrap());
        assert_eq!(store.purge_expired(now + 3600).unwrap(), N as u64);
        assert!(visited(&store) <= 2 * N, "{} visits", visited(&store));
    }

    /// What fork() leaves a child: a copy of the store made in another process. It refuses
    /// everything rather than accept tokens the parent (or another child) accepts too.
    #[test]
    fn a_store_used_from_another_process_fails_closed() {
        let mut store = MemoryStore::new(10);
        let now = crate::unix_now();
        store.spend(&[1; 32], &nonce(1), now + 3600).unwrap();
        store.pid = store.pid.wrapping_add(1);
        let refused = store.spend(&[1; 32], &nonce(2), now + 3600).unwrap_err();
        assert!(
            refused
                .0
                .contains("open the redeemer in the process that uses it"),
            "{refused}"
        );
        assert!(store.spend(&[1; 32], &nonce(1), now + 3600).is_err());
        assert!(store.is_spent(&[1; 32], &nonce(1)).is_err());
        assert!(store.retain_until(&[1; 32], now + 7200).is_err());
        assert!(store.purge_expired(now).is_err());
        assert!(store.probe_write().is_err());
    }

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
