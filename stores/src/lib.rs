//! Spend stores behind `privacypass::SpendStore`, chosen by URL, shared by the daemon and the C
//! library:
//!
//! - `memory:` or `memory:CAPACITY`: process-local, bounded; for tests and single processes.
//! - `rocksdb:PATH`: embedded RocksDB, durable (WAL fsynced before a spend is acknowledged).
//! - `redis://HOST:PORT/DB`, `redis+cluster://H1:P1,H2:P2`: shared by several processes.

use std::sync::Arc;

#[cfg(feature = "rocksdb")]
pub mod rocks;

use privacypass::{MemoryStore, SpendStore, StoreError};

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

/// Opens the spend store a URL names.
pub fn open(url: &str) -> Result<Arc<dyn SpendStore>, OpenError> {
    if let Some(rest) = url.strip_prefix("memory:") {
        let capacity = if rest.is_empty() {
            privacypass::store::DEFAULT_MEMORY_CAPACITY
        } else {
            rest.parse().map_err(|_| OpenError::InvalidUrl {
                url: url.to_owned(),
                reason: "memory capacity must be a number of spends".into(),
            })?
        };
        return Ok(Arc::new(MemoryStore::new(capacity)));
    }
    #[cfg(feature = "rocksdb")]
    if let Some(path) = url.strip_prefix("rocksdb:") {
        if path.is_empty() {
            return Err(OpenError::InvalidUrl {
                url: url.to_owned(),
                reason: "rocksdb: needs a directory path".into(),
            });
        }
        return Ok(Arc::new(rocks::RocksStore::open(path)?));
    }
    Err(OpenError::UnsupportedUrl(url.to_owned()))
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
