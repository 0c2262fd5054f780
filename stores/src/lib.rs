//! Spend stores behind `privacypass_core::SpendStore`, chosen by URL, shared by the daemon and the C
//! library:
//!
//! - `memory:` or `memory:CAPACITY`: process-local, bounded; for tests and single processes.
//! - `rocksdb:PATH`: embedded RocksDB, durable (WAL fsynced before a spend is acknowledged).
//! - `redis://HOST:PORT/DB`, `redis+cluster://H1:P1,H2:P2`: Redis or Valkey, shared by several
//!   processes (see `redis` for passwords, options, key layout and durability).

use std::sync::Arc;

pub mod durable;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "rocksdb")]
pub mod rocks;
pub mod state;

use privacypass_core::{MemoryStore, SpendStore, StoreError};
pub use state::{Claim, Fingerprint, IdempotencyStore, MemoryState, RateLimitStore};

/// Why a store URL could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "unsupported store URL {0:?}: expected memory:, rocksdb:PATH, redis:// or redis+cluster://"
    )]
    UnsupportedUrl(String),
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything a daemon keeps in its store: spends, Idempotency-Key records, rate-limit counters.
/// The records and counters are remote exactly when the spends are (`SpendStore::is_remote`).
#[derive(Clone)]
pub struct Backends {
    pub spends: Arc<dyn SpendStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub rate_limits: Arc<dyn RateLimitStore>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").finish_non_exhaustive()
    }
}

/// Opens the store a URL names with its request state: in process for `memory:`; idempotency
/// records persisted beside the spends for `rocksdb:` (counters stay in process, as the store
/// serves one process); everything shared for Redis.
pub fn open_backends(url: &str) -> Result<Backends, OpenError> {
    #[cfg(feature = "redis")]
    if is_redis(url) {
        let store = Arc::new(redis::RedisStore::open(url)?);
        return Ok(Backends {
            spends: store.clone(),
            idempotency: store.clone(),
            rate_limits: store,
        });
    }
    #[cfg(feature = "rocksdb")]
    if url.starts_with("rocksdb:") {
        let store = Arc::new(open_rocksdb(url)?);
        return Ok(Backends {
            spends: store.clone(),
            idempotency: store,
            rate_limits: Arc::new(MemoryState::new()),
        });
    }
    let spends = open(url)?;
    let state = Arc::new(MemoryState::new());
    Ok(Backends {
        spends,
        idempotency: state.clone(),
        rate_limits: state,
    })
}

#[cfg(feature = "rocksdb")]
fn open_rocksdb(url: &str) -> Result<rocks::RocksStore, OpenError> {
    let path = url.strip_prefix("rocksdb:").unwrap_or_default();
    if path.is_empty() {
        return Err(OpenError::InvalidUrl {
            url: url.to_owned(),
            reason: "rocksdb: needs a directory path".into(),
        });
    }
    Ok(rocks::RocksStore::open(path)?)
}

/// Opens the spend store a URL names.
pub fn open(url: &str) -> Result<Arc<dyn SpendStore>, OpenError> {
    if let Some(rest) = url.strip_prefix("memory:") {
        let capacity = if rest.is_empty() {
            privacypass_core::store::DEFAULT_MEMORY_CAPACITY
        } else {
            rest.parse().map_err(|_| OpenError::InvalidUrl {
                url: url.to_owned(),
                reason: "memory capacity must be a number of spends".into(),
            })?
        };
        return Ok(Arc::new(MemoryStore::new(capacity)));
    }
    #[cfg(feature = "rocksdb")]
    if url.starts_with("rocksdb:") {
        return Ok(Arc::new(open_rocksdb(url)?));
    }
    #[cfg(feature = "redis")]
    if is_redis(url) {
        return Ok(Arc::new(redis::RedisStore::open(url)?));
    }
    Err(OpenError::UnsupportedUrl(redacted(url)))
}

#[cfg(feature = "redis")]
fn is_redis(url: &str) -> bool {
    url.starts_with("redis://") || url.starts_with("redis+cluster://")
}

/// A store URL as it may appear in logs and messages: any password replaced by `***`.
pub fn redact(url: &str) -> String {
    redacted(url)
}

fn redacted(url: &str) -> String {
    #[cfg(feature = "redis")]
    return redis::redact(url);
    #[cfg(not(feature = "redis"))]
    url.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_memory_and_refuses_unknown_schemes() {
        assert!(open("memory:").is_ok());
        assert!(open("memory:10").is_ok());
        assert!(matches!(
            open("memory:x"),
            Err(OpenError::InvalidUrl { .. })
        ));
        assert!(matches!(open("ftp://x"), Err(OpenError::UnsupportedUrl(_))));
    }
}
