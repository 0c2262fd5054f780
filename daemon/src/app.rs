//! The daemon's shared state: settings, the current key set (swapped on reload), the spend
//! store, metrics and request ids.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use privacypass::keys::TokenKeyId;
use privacypass::wire::NONCE_LEN;
use privacypass::{KeySet, SpendOutcome, SpendStore, StoreError};

use crate::config::Settings;
use crate::metrics::Metrics;

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

pub struct App {
    pub settings: Settings,
    keys: RwLock<Arc<KeySet>>,
    pub store: Arc<dyn SpendStore>,
    /// `store`, timing each spend for the metrics.
    pub timed_store: Arc<dyn SpendStore>,
    pub metrics: Arc<Metrics>,
    request_prefix: String,
    request_counter: AtomicU64,
}

impl App {
    pub fn new(settings: Settings, keys: KeySet, store: Arc<dyn SpendStore>) -> Self {
        let mut prefix = [0u8; 6];
        // Request ids only need to be unique; a zero prefix after an RNG failure still counts up.
        let _ = getrandom::fill(&mut prefix);
        let metrics = Arc::new(Metrics::default());
        let timed_store: Arc<dyn SpendStore> = Arc::new(TimedStore {
            inner: store.clone(),
            metrics: metrics.clone(),
        });
        App {
            settings,
            keys: RwLock::new(Arc::new(keys)),
            store,
            timed_store,
            metrics,
            request_prefix: format!("req_{}", hex::encode(prefix)),
            request_counter: AtomicU64::new(0),
        }
    }

    /// The key set in force now.
    pub fn keys(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the key set; requests already running keep the one they started with.
    pub fn replace_keys(&self, keys: KeySet) {
        let keys = Arc::new(keys);
        match self.keys.write() {
            Ok(mut guard) => *guard = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    /// `req_<12 hex of this process><counter>`: unique per response.
    pub fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:010x}", self.request_prefix)
    }
}

struct TimedStore {
    inner: Arc<dyn SpendStore>,
    metrics: Arc<Metrics>,
}

impl SpendStore for TimedStore {
    fn spend(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
    ) -> Result<SpendOutcome, StoreError> {
        let started = Instant::now();
        let outcome = self.inner.spend(key_id, nonce, expires_at);
        self.metrics.record_store(started.elapsed());
        outcome
    }

    fn is_spent(&self, key_id: &TokenKeyId, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError> {
        self.inner.is_spent(key_id, nonce)
    }

    fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        self.inner.purge_expired(now)
    }
}
