//! The daemon's shared state: settings, the current key set (swapped on reload), the spend
//! store, metrics and request ids.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use privacypass_core::crypto;
use privacypass_core::keys::TokenKeyId;
use privacypass_core::store::SpendCallback;
use privacypass_core::wire::NONCE_LEN;
use privacypass_core::{CommitSizes, KeySet, SpendOutcome, SpendStore, StoreError};

use privacypass_stores::{Backends, IdempotencyStore, RateLimitStore};

use crate::auth::ApiKeys;
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
    api_keys: RwLock<Arc<ApiKeys>>,
    pub store: Arc<dyn SpendStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub rate_limits: Arc<dyn RateLimitStore>,
    /// `store`, timing each spend for the metrics.
    pub timed_store: Arc<dyn SpendStore>,
    pub metrics: Arc<Metrics>,
    request_prefix: String,
    request_counter: AtomicU64,
    /// Digests of tokens this process verified and found spent or recorded.
    pub seen_tokens: SeenTokens,
    /// The last write probe of the store: when, and whether it could write.
    probed: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

/// How long a write probe's outcome answers health checks.
const PROBE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// SHA-256 digests of whole tokens (authenticator included) that verified, so that a replay of
/// the same bytes skips the RSA verification: a forged token differs in its bytes and is
/// verified in full. Two generations of at most `SEEN_GENERATION` digests each (about 20 MB):
/// when the current one fills, it becomes the previous one and the oldest is dropped.
#[derive(Debug, Default)]
pub struct SeenTokens {
    /// (current, previous) generation.
    generations: Mutex<[HashSet<[u8; 32]>; 2]>,
}

const SEEN_GENERATION: usize = 1 << 18;

impl SeenTokens {
    pub fn contains(&self, digest: &[u8; 32]) -> bool {
        self.generations
            .lock()
            .is_ok_and(|g| g[0].contains(digest) || g[1].contains(digest))
    }

    pub fn insert(&self, digest: [u8; 32]) {
        if let Ok(mut g) = self.generations.lock() {
            if g[0].len() >= SEEN_GENERATION {
                g[1] = std::mem::take(&mut g[0]);
            }
            g[0].insert(digest);
        }
    }
}

impl App {
    pub fn new(settings: Settings, keys: KeySet, backends: Backends, api_keys: ApiKeys) -> Self {
        let store = backends.spends;
        let mut prefix = [0u8; 6];
        // Request ids only need to be unique; a zero prefix after an RNG failure still counts up.
        let _ = crypto::random_bytes(&mut prefix);
        let metrics = Arc::new(Metrics::default());
        let timed_store: Arc<dyn SpendStore> = Arc::new(TimedStore {
            inner: store.clone(),
            metrics: metrics.clone(),
        });
        App {
            settings,
            keys: RwLock::new(Arc::new(keys)),
            api_keys: RwLock::new(Arc::new(api_keys)),
            store,
            idempotency: backends.idempotency,
            rate_limits: backends.rate_limits,
            timed_store,
            metrics,
            request_prefix: format!("req_{}", hex::encode(prefix)),
            request_counter: AtomicU64::new(0),
            seen_tokens: SeenTokens::default(),
            probed: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether a spend could be recorded now: the store's write probe, run at most once per
    /// `PROBE_FOR` (concurrent health checks wait for the one probe in progress).
    pub async fn store_writable(self: &Arc<Self>) -> bool {
        let mut probed = self.probed.lock().await;
        if let Some((at, ok)) = *probed {
            if at.elapsed() < PROBE_FOR {
                return ok;
            }
        }
        let app = self.clone();
        let ok = tokio::task::spawn_blocking(move || app.store.probe_write())
            .await
            .map(|r| {
                if let Err(e) = &r {
                    tracing::warn!(error = %e, "the store cannot record spends now");
                }
                r.is_ok()
            })
            .unwrap_or(false);
        *probed = Some((Instant::now(), ok));
        ok
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

    /// The API keys in force now.
    pub fn api_keys(&self) -> Arc<ApiKeys> {
        match self.api_keys.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace_api_keys(&self, api_keys: ApiKeys) {
        let api_keys = Arc::new(api_keys);
        match self.api_keys.write() {
            Ok(mut guard) => *guard = api_keys,
            Err(poisoned) => *poisoned.into_inner() = api_keys,
        }
    }

    /// Runs a call on the request state (idempotency records, counters): in place when the
    /// store is local, on the blocking pool when it is remote (`SpendStore::is_remote`).
    pub async fn on_request_state<T: Send + 'static>(
        self: &Arc<Self>,
        call: impl FnOnce(&App) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if !self.store.is_remote() {
            return call(self);
        }
        let app = self.clone();
        tokio::task::spawn_blocking(move || call(&app))
            .await
            .map_err(|_| StoreError("request state task failed".into()))?
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

    fn spend_with(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
        done: SpendCallback,
    ) {
        let started = Instant::now();
        let metrics = self.metrics.clone();
        self.inner.spend_with(
            key_id,
            nonce,
            expires_at,
            Box::new(move |outcome| {
                metrics.record_store(started.elapsed());
                done(outcome);
            }),
        );
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    fn spend_with_returns_at_once(&self) -> bool {
        self.inner.spend_with_returns_at_once()
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
        self.inner.commit_sizes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_tokens_keep_two_generations() {
        let seen = SeenTokens::default();
        let digest = |n: usize| {
            let mut d = [0u8; 32];
            d[..8].copy_from_slice(&(n as u64).to_be_bytes());
            d
        };
        seen.insert(digest(0));
        assert!(seen.contains(&digest(0)) && !seen.contains(&digest(1)));
        for n in 1..=SEEN_GENERATION {
            seen.insert(digest(n));
        }
        // The first generation filled and moved back: still remembered.
        assert!(seen.contains(&digest(0)));
        for n in SEEN_GENERATION + 1..=2 * SEEN_GENERATION {
            seen.insert(digest(n));
        }
        // A second rotation dropped it; the newest are kept.
        assert!(!seen.contains(&digest(0)));
        assert!(seen.contains(&digest(2 * SEEN_GENERATION)));
    }
}
