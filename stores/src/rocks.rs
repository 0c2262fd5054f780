//! The embedded spend store: RocksDB in the daemon's data directory.
//!
//! - Each token key has its own column family (`spends-<hex key id>`), holding one empty record
//!   per spent nonce. When a key can no longer be redeemed its column family is dropped whole,
//!   so disk use is bounded by the keys that are still redeemable.
//! - A spend is acknowledged only after the write-ahead log holding it is fsynced. Concurrent
//!   spends share fsyncs (group commit): whoever finds no commit in progress writes every spend
//!   queued so far in one synced batch, and the others wait for that batch's outcome. Callers
//!   that must not block (the daemon's async threads) use `spend_with`: the first such call
//!   starts one committer thread, which writes the batches and answers each caller's callback,
//!   so no thread is parked per spend. A store that only sees `spend` (the C library) starts no
//!   thread of its own.
//! - Exactly once: the check for an earlier spend and the queuing of a new one happen under one
//!   lock, and a spend stays in the in-flight set until its batch is durable, so a second
//!   redemption of the same token waits for the first and then answers `AlreadySpent`. If the
//!   batch fails, every spend in it fails: nothing is acknowledged that is not on disk.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use privacypass_core::keys::TokenKeyId;
use privacypass_core::store::{CommitSizeCounter, CommitSizes, SpendCallback};
use privacypass_core::wire::NONCE_LEN;
use privacypass_core::{SpendOutcome, SpendStore, StoreError};

use crate::state::{Claim, Fingerprint, IdempotencyStore, MemoryState, Record};
use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DBWithThreadMode, MultiThreaded, Options,
    WriteBatch, WriteOptions,
};

type Db = DBWithThreadMode<MultiThreaded>;
type SpendKey = (TokenKeyId, [u8; NONCE_LEN]);

const CF_PREFIX: &str = "spends-";
/// Records in the default column family: `expiry/<hex key id>` -> u64 BE, when the key's
/// column family may be dropped.
const EXPIRY_PREFIX: &[u8] = b"expiry/";

/// Completed Idempotency-Key records: `idem/<key>` -> `Record::encode_completed`, indexed by
/// expiry as `idem-expiry/<u64 BE expiry><key>` so that purging reads only what expired.
const IDEM_PREFIX: &[u8] = b"idem/";
const IDEM_EXPIRY_PREFIX: &[u8] = b"idem-expiry/";
/// Written by health checks to learn whether RocksDB still takes writes.
const PROBE_KEY: &[u8] = b"probe";

fn idem_key(key: &str) -> Vec<u8> {
    [IDEM_PREFIX, key.as_bytes()].concat()
}

fn idem_expiry_key(expires_at: u64, key: &str) -> Vec<u8> {
    [
        IDEM_EXPIRY_PREFIX,
        &expires_at.to_be_bytes(),
        key.as_bytes(),
    ]
    .concat()
}

fn expiry_key(key_id: &TokenKeyId) -> Vec<u8> {
    let mut record = EXPIRY_PREFIX.to_vec();
    record.extend_from_slice(hex::encode(key_id).as_bytes());
    record
}

fn cf_name(key_id: &TokenKeyId) -> String {
    format!("{CF_PREFIX}{}", hex::encode(key_id))
}

fn store_error(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("rocksdb {context}: {e}"))
}

/// Where `Inner::enqueue` left a spend.
enum Enqueued {
    /// Already durable.
    Spent,
    /// The same token is in this batch, queued or being written.
    InFlight(Arc<Batch>),
    /// Queued now, in this batch.
    Queued(Arc<Batch>),
}

/// The outcome of one group-commit batch, shared by the spends in it.
#[derive(Default)]
struct Batch {
    /// None while in flight; Some(true) once durable, Some(false) if the write failed.
    done: Mutex<Option<bool>>,
    /// Callers of `spend_with` waiting for this batch: the outcome each gets if it is durable
    /// (Recorded for its own spend, AlreadySpent for a second spend of a token in it).
    callbacks: Mutex<Vec<(SpendOutcome, SpendCallback)>>,
}

impl Batch {
    /// Answers the callers waiting for this batch once its outcome is known.
    fn answer(&self, durable: bool) {
        let callbacks = match self.callbacks.lock() {
            Ok(mut guard) => std::mem::take(&mut *guard),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for (outcome, callback) in callbacks {
            callback(if durable {
                Ok(outcome)
            } else {
                Err(StoreError(
                    "rocksdb write failed: nothing was recorded".into(),
                ))
            });
        }
    }
}

#[derive(Default)]
struct State {
    /// Spends queued or being written, with the batch that carries them.
    in_flight: HashMap<SpendKey, Arc<Batch>>,
    /// Spends waiting for the next commit.
    queued: Vec<(SpendKey, u64)>,
    queued_batch: Arc<Batch>,
    committing: bool,
    /// Column families known to exist, with the latest end of redemption recorded for each
    /// (`u64::MAX` when its expiry record was missing or unreadable: kept for good).
    families: HashMap<TokenKeyId, u64>,
    /// Set by the first failed write: RocksDB then refuses writes until the store is opened
    /// again, so every spend fails closed (and health says so) until a restart.
    failed: Option<String>,
    /// Whether the committer thread of `spend_with` runs, and whether it must stop.
    committer_started: bool,
    stopping: bool,
}

/// RocksDB spend store. One process at a time opens a data directory (RocksDB's lock).
///
/// `spend` commits on the calling thread (the first caller to find no commit in progress writes
/// the batch). `spend_with` never blocks: the first call starts a committer thread that writes
/// the batches, and each caller is answered from it.
pub struct RocksStore {
    inner: Arc<Inner>,
    committer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct Inner {
    db: Db,
    state: Mutex<State>,
    /// Held while column families are created or dropped and while a batch is written, so a
    /// purge never drops a family under a batch in flight.
    ddl: Mutex<()>,
    committed: Condvar,
    cf_options: Options,
    /// Idempotency-Key claims in flight (completed records are in the database).
    claims: MemoryState,
    /// Spends per synced batch written.
    commits: CommitSizeCounter,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.inner.db.path())
            .finish_non_exhaustive()
    }
}

fn family_options() -> Options {
    let mut table = BlockBasedOptions::default();
    // "Not spent yet" is the common lookup: a bloom filter answers most of them from memory.
    table.set_bloom_filter(10.0, false);
    let mut opts = Options::default();
    opts.set_block_based_table_factory(&table);
    opts
}

impl RocksStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        // The directory's own entry must be durable before any spend in it is acknowledged.
        crate::durable::create_dir_all(path).map_err(|e| store_error("create directory", e))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_paranoid_checks(true);
        opts.set_keep_log_file_num(4);
        let cf_options = family_options();
        // A new store has only the default column family. (Listing the families of a path
        // with no database also leaks RocksDB's empty result array in rust-rocksdb 0.25.)
        let existing = if path.join("CURRENT").exists() {
            Db::list_cf(&Options::default(), path)
                .map_err(|e| store_error("list column families", e))?
        } else {
            vec![rocksdb::DEFAULT_COLUMN_FAMILY_NAME.to_owned()]
        };
        let descriptors = existing
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(name, cf_options.clone()))
            .collect::<Vec<_>>();
        let db = Db::open_cf_descriptors(&opts, path, descriptors)
            .map_err(|e| store_error("open", e))?;
        let mut families = HashMap::new();
        for item in db.prefix_iterator(EXPIRY_PREFIX) {
            let (k, v) = item.map_err(|e| store_error("read expiries", e))?;
            if !k.starts_with(EXPIRY_PREFIX) {
                break;
            }
            let id = hex::decode(&k[EXPIRY_PREFIX.len()..])
                .ok()
                .and_then(|b| TokenKeyId::try_from(b).ok());
            let expiry = <[u8; 8]>::try_from(&v[..]).ok().map(u64::from_be_bytes);
            if let (Some(id), Some(expiry)) = (id, expiry) {
                if db.cf_handle(&cf_name(&id)).is_some() {
                    families.insert(id, expiry);
                }
            }
        }
        // A family whose expiry record is missing or unreadable still holds spends: it is
        // checked like any other and never purged (fail closed).
        for name in &existing {
            let id = name
                .strip_prefix(CF_PREFIX)
                .and_then(|hex_id| hex::decode(hex_id).ok())
                .and_then(|b| TokenKeyId::try_from(b).ok());
            if let Some(id) = id {
                families.entry(id).or_insert(u64::MAX);
            }
        }
        Ok(RocksStore {
            inner: Arc::new(Inner {
                db,
                state: Mutex::new(State {
                    families,
                    ..State::default()
                }),
                ddl: Mutex::new(()),
                committed: Condvar::new(),
                cf_options,
                claims: MemoryState::new(),
                commits: CommitSizeCounter::default(),
            }),
            committer: Mutex::new(None),
        })
    }

    /// Column families holding spends, for operators and tests.
    pub fn key_families(&self) -> Result<Vec<TokenKeyId>, StoreError> {
        Ok(self.inner.lock()?.families.keys().copied().collect())
    }

    /// Starts the committer thread of `spend_with` unless it runs.
    fn ensure_committer(&self, state: &mut State) -> Result<(), StoreError> {
        if state.committer_started {
            return Ok(());
        }
        let inner = self.inner.clone();
        let handle = std::thread::Builder::new()
            .name("privacypass-commit".into())
            .spawn(move || inner.run_committer())
            .map_err(|e| store_error("start the committer thread", e))?;
        state.committer_started = true;
        if let Ok(mut slot) = self.committer.lock() {
            *slot = Some(handle);
        }
        Ok(())
    }
}

impl Drop for RocksStore {
    fn drop(&mut self) {
        if let Ok(mut state) = self.inner.state.lock() {
            state.stopping = true;
        }
        self.inner.committed.notify_all();
        let handle = match self.committer.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Inner {
    /// The committer of `spend_with`: writes whatever is queued whenever no commit runs, until
    /// the store is dropped (after answering what is queued).
    fn run_committer(&self) {
        let Ok(mut state) = self.lock() else { return };
        loop {
            if !state.queued.is_empty() && !state.committing {
                state = match self.commit_queued(state) {
                    Ok(state) => state,
                    Err(_) => return,
                };
                continue;
            }
            if state.stopping && state.queued.is_empty() {
                return;
            }
            state = match self.committed.wait(state) {
                Ok(state) => state,
                Err(_) => return,
            };
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError("rocksdb store lock poisoned".into()))
    }

    /// Waits for `batch` to finish; `Ok(())` once durable.
    fn wait_for<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        batch: &Arc<Batch>,
    ) -> Result<MutexGuard<'a, State>, StoreError> {
        loop {
            let done = *batch
                .done
                .lock()
                .map_err(|_| StoreError("batch lock poisoned".into()))?;
            match done {
                Some(true) => return Ok(state),
                Some(false) => {
                    return Err(StoreError(
                        "rocksdb write failed: nothing was recorded".into(),
                    ))
                }
                None => {}
            }
            if !state.committing {
                state = self.commit_queued(state)?;
                continue;
            }
            state = self
                .committed
                .wait(state)
                .map_err(|_| StoreError("rocksdb store lock poisoned".into()))?;
        }
    }

    /// Writes every queued spend in one synced batch, with the lock released during the write.
    fn commit_queued<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>, StoreError> {
        let queued = std::mem::take(&mut state.queued);
        let batch = std::mem::take(&mut state.queued_batch);
        if queued.is_empty() {
            return Ok(state);
        }
        state.committing = true;
        // Each key's latest end in this batch, where it moves the recorded one forward (or the
        // key has no column family yet): written in the same synced batch as the spends.
        let mut ends: Vec<(TokenKeyId, u64)> = Vec::new();
        for ((key_id, _), end) in &queued {
            match ends.iter_mut().find(|(k, _)| k == key_id) {
                Some((_, e)) => *e = (*e).max(*end),
                None => ends.push((*key_id, *end)),
            }
        }
        ends.retain(|(key_id, end)| state.families.get(key_id).is_none_or(|e| end > e));
        let failed = state.failed.clone();
        drop(state);
        let result = match failed {
            Some(reason) => Err(failed_closed(&reason)),
            None => self.write_spends(&queued, &ends),
        };
        if result.is_ok() {
            self.commits.record(queued.len() as u64);
        }
        let mut state = self.lock()?;
        match &result {
            Ok(()) => {
                for (key_id, end) in ends {
                    let e = state.families.entry(key_id).or_insert(end);
                    *e = (*e).max(end);
                }
            }
            Err(e) if state.failed.is_none() => state.failed = Some(e.0.clone()),
            Err(_) => {}
        }
        for (k, _) in &queued {
            state.in_flight.remove(k);
        }
        if let Ok(mut done) = batch.done.lock() {
            *done = Some(result.is_ok());
        }
        state.committing = false;
        self.committed.notify_all();
        // Callers of `spend_with` are answered outside the lock (a callback may call the store).
        drop(state);
        batch.answer(result.is_ok());
        self.lock()
    }

    fn ddl(&self) -> Result<MutexGuard<'_, ()>, StoreError> {
        self.ddl
            .lock()
            .map_err(|_| StoreError("rocksdb store lock poisoned".into()))
    }

    /// Creates the column family of `key_id` unless it exists. Under the ddl lock.
    fn ensure_family(&self, key_id: &TokenKeyId) -> Result<(), StoreError> {
        let name = cf_name(key_id);
        if self.db.cf_handle(&name).is_none() {
            self.db
                .create_cf(&name, &self.cf_options)
                .map_err(|e| store_error("create column family", e))?;
        }
        Ok(())
    }

    /// One synced batch: the spends, and the ends they move forward. Column families are
    /// created first where missing, under the ddl lock that a purge takes too.
    fn write_spends(
        &self,
        queued: &[(SpendKey, u64)],
        ends: &[(TokenKeyId, u64)],
    ) -> Result<(), StoreError> {
        let _ddl = self.ddl()?;
        let mut keys: Vec<&TokenKeyId> = queued.iter().map(|((key_id, _), _)| key_id).collect();
        keys.sort_unstable();
        keys.dedup();
        for key_id in keys {
            self.ensure_family(key_id)?;
        }
        let mut write = WriteBatch::default();
        for (key_id, end) in ends {
            write.put(expiry_key(key_id), end.to_be_bytes());
        }
        for ((key_id, nonce), _) in queued {
            let cf = self
                .db
                .cf_handle(&cf_name(key_id))
                .ok_or_else(|| StoreError("rocksdb column family missing".into()))?;
            write.put_cf(&cf, nonce, []);
        }
        self.db
            .write_opt(write, &synced())
            .map_err(|e| store_error("write", e))
    }

    fn durable_contains(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<bool, StoreError> {
        let Some(cf) = self.db.cf_handle(&cf_name(key_id)) else {
            return Ok(false);
        };
        Ok(self
            .db
            .get_pinned_cf(&cf, nonce)
            .map_err(|e| store_error("read", e))?
            .is_some())
    }
}

impl Inner {
    /// Where a spend stands once looked up, under the lock: in a batch being written (the
    /// same token twice), already durable, or queued now in the next batch.
    fn enqueue(
        &self,
        state: &mut State,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
    ) -> Result<Enqueued, StoreError> {
        let k = (*key_id, *nonce);
        if let Some(batch) = state.in_flight.get(&k) {
            return Ok(Enqueued::InFlight(batch.clone()));
        }
        // Whatever the expiry records say: a family on disk is always looked in.
        if self.durable_contains(key_id, nonce)? {
            return Ok(Enqueued::Spent);
        }
        if let Some(reason) = &state.failed {
            return Err(failed_closed(reason));
        }
        let batch = state.queued_batch.clone();
        state.queued.push((k, expires_at));
        state.in_flight.insert(k, batch.clone());
        Ok(Enqueued::Queued(batch))
    }

    fn spend(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
    ) -> Result<SpendOutcome, StoreError> {
        let mut state = self.lock()?;
        let (batch, outcome) = match self.enqueue(&mut state, key_id, nonce, expires_at)? {
            Enqueued::Spent => return Ok(SpendOutcome::AlreadySpent),
            // The same token is being recorded right now: its outcome decides ours.
            Enqueued::InFlight(batch) => (batch, SpendOutcome::AlreadySpent),
            Enqueued::Queued(batch) => (batch, SpendOutcome::Recorded),
        };
        drop(self.wait_for(state, &batch)?);
        Ok(outcome)
    }

    fn is_spent(&self, key_id: &TokenKeyId, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError> {
        self.durable_contains(key_id, nonce)
    }

    /// Moves the recorded end of `key_id` forward to `until`, durably, before answering.
    fn retain_until(&self, key_id: &TokenKeyId, until: u64) -> Result<(), StoreError> {
        let _ddl = self.ddl()?;
        {
            let state = self.lock()?;
            if let Some(reason) = &state.failed {
                return Err(failed_closed(reason));
            }
            if state.families.get(key_id).is_some_and(|e| *e >= until) {
                return Ok(());
            }
        }
        self.ensure_family(key_id)?;
        self.db
            .put_opt(expiry_key(key_id), until.to_be_bytes(), &synced())
            .map_err(|e| store_error("record expiry", e))?;
        let mut state = self.lock()?;
        let e = state.families.entry(*key_id).or_insert(until);
        *e = (*e).max(until);
        Ok(())
    }

    /// Drops the families whose recorded end is before `now`, except those with a spend
    /// queued or being written; under the ddl lock, so no batch is written meanwhile.
    fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        let _ddl = self.ddl()?;
        let expired: Vec<TokenKeyId> = {
            let state = self.lock()?;
            state
                .families
                .iter()
                .filter(|(key_id, &end)| {
                    end <= now && !state.in_flight.keys().any(|(k, _)| k == *key_id)
                })
                .map(|(k, _)| *k)
                .collect()
        };
        for key_id in &expired {
            // The expiry record goes first: a crash in between leaves a family without one,
            // which is kept for good rather than left unchecked.
            self.db
                .delete_opt(expiry_key(key_id), &synced())
                .map_err(|e| store_error("delete expiry", e))?;
            self.db
                .drop_cf(&cf_name(key_id))
                .map_err(|e| store_error("drop column family", e))?;
            self.lock()?.families.remove(key_id);
        }
        self.purge_idempotency(now)?;
        Ok(expired.len() as u64)
    }

    /// Whether a write can be made now: a small unsynced write, which fails once RocksDB has
    /// stopped taking writes.
    fn probe_write(&self) -> Result<(), StoreError> {
        if let Some(reason) = &self.lock()?.failed {
            return Err(failed_closed(reason));
        }
        self.db
            .put(PROBE_KEY, [])
            .map_err(|e| store_error("write probe", e))
    }
}

/// Test-only: with this variable set to `1`, writes skip the log's fsync, so that the
/// power-loss test (tests/daemon/powerloss.rs) can show that it notices lost spends. Never set
/// it in production: a power cut then loses acknowledged spends.
pub const UNSYNCED_WAL_ENV: &str = "PRIVACYPASS_TEST_UNSYNCED_WAL";

/// Whether the test-only `UNSYNCED_WAL_ENV` is set.
pub fn unsynced_wal() -> bool {
    static UNSYNCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNSYNCED.get_or_init(|| std::env::var_os(UNSYNCED_WAL_ENV).is_some_and(|v| v == "1"))
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(!unsynced_wal());
    opts
}

/// The error of every spend after a failed write.
fn failed_closed(reason: &str) -> StoreError {
    StoreError(format!(
        "rocksdb refuses writes since an earlier write failed ({reason}); restart to recover"
    ))
}

impl Inner {
    /// Deletes the Idempotency-Key records that expired before `now`.
    fn purge_idempotency(&self, now: u64) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for item in self.db.prefix_iterator(IDEM_EXPIRY_PREFIX) {
            let (k, _) = item.map_err(|e| store_error("read idempotency expiries", e))?;
            let Some(rest) = k.strip_prefix(IDEM_EXPIRY_PREFIX) else {
                break;
            };
            let Some((at, key)) = rest.split_first_chunk::<8>() else {
                break;
            };
            if u64::from_be_bytes(*at) > now {
                break;
            }
            batch.delete([IDEM_PREFIX, key].concat());
            batch.delete(&k);
        }
        self.db
            .write(batch)
            .map_err(|e| store_error("purge idempotency records", e))
    }
}

/// Completed records are written to the WAL without an fsync of their own: a record lost to a
/// power failure makes a retry sign again, and RSA blind signing is deterministic, so the retry
/// gets the same response.
impl SpendStore for RocksStore {
    fn spend(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
    ) -> Result<SpendOutcome, StoreError> {
        self.inner.spend(key_id, nonce, expires_at)
    }

    /// Queues the spend for the committer thread and returns at once; `done` is called from
    /// that thread once the spend's batch is durable (or failed), or at once for a token
    /// already recorded.
    fn spend_with(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
        done: SpendCallback,
    ) {
        let inner = &self.inner;
        let mut state = match inner.lock() {
            Ok(state) => state,
            Err(e) => return done(Err(e)),
        };
        let enqueued = self
            .ensure_committer(&mut state)
            .and_then(|()| inner.enqueue(&mut state, key_id, nonce, expires_at));
        // A waiting caller joins its batch under the lock: a batch answers its callers only
        // after the committer has taken the lock to close it.
        let answer = match enqueued {
            Ok(Enqueued::InFlight(batch)) => {
                // The same token is being recorded right now: its outcome decides ours.
                push_callback(&batch, SpendOutcome::AlreadySpent, done);
                return;
            }
            Ok(Enqueued::Queued(batch)) => {
                push_callback(&batch, SpendOutcome::Recorded, done);
                let idle = !state.committing;
                drop(state);
                if idle {
                    inner.committed.notify_all();
                }
                return;
            }
            Ok(Enqueued::Spent) => Ok(SpendOutcome::AlreadySpent),
            Err(e) => Err(e),
        };
        drop(state);
        done(answer);
    }

    fn is_remote(&self) -> bool {
        false
    }

    fn is_spent(&self, key_id: &TokenKeyId, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError> {
        self.inner.is_spent(key_id, nonce)
    }

    fn retain_until(&self, key_id: &TokenKeyId, until: u64) -> Result<(), StoreError> {
        self.inner.retain_until(key_id, until)
    }

    fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        self.inner.purge_expired(now)
    }

    fn probe_write(&self) -> Result<(), StoreError> {
        self.inner.probe_write()
    }

    fn commit_sizes(&self) -> Option<CommitSizes> {
        Some(self.inner.commits.snapshot())
    }
}

fn push_callback(batch: &Batch, outcome: SpendOutcome, done: SpendCallback) {
    match batch.callbacks.lock() {
        Ok(mut callbacks) => callbacks.push((outcome, done)),
        Err(poisoned) => poisoned.into_inner().push((outcome, done)),
    }
}

impl IdempotencyStore for RocksStore {
    fn claim(
        &self,
        key: &str,
        fingerprint: &Fingerprint,
        lease_secs: u64,
    ) -> Result<Claim, StoreError> {
        self.inner
            .claims
            .claim_with(key, fingerprint, lease_secs, || {
                let stored = self
                    .inner
                    .db
                    .get(idem_key(key))
                    .map_err(|e| store_error("read idempotency record", e))?;
                Ok(stored.as_deref().and_then(Record::decode_completed))
            })
    }

    fn complete(
        &self,
        key: &str,
        fingerprint: &Fingerprint,
        response: &[u8],
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        let expires_at = privacypass_core::unix_now() + ttl_secs;
        let mut batch = WriteBatch::default();
        batch.put(
            idem_key(key),
            Record::encode_completed(fingerprint, response, expires_at),
        );
        batch.put(idem_expiry_key(expires_at, key), []);
        self.inner
            .db
            .write(batch)
            .map_err(|e| store_error("write idempotency record", e))?;
        self.inner.claims.forget(key)
    }

    fn release(&self, key: &str) -> Result<(), StoreError> {
        self.inner.claims.forget(key)
    }
}
