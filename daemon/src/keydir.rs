//! The key directory: one PKCS#8 PEM file (mode 0600) per issuer key, named by its token key
//! id, with a JSON sidecar holding its validity window.
//!
//! ```text
//! keys/3f0c…e1.pem    the private key
//! keys/3f0c…e1.json   {"not-before": 1767225600, "expires": 1769904000}
//! ```
//!
//! A VOPRF key (token type 0x0001 or 0x0005) lives beside them the same way: its file holds
//! the core's VOPRF key form (`-----BEGIN PRIVACYPASS VOPRF ... PRIVATE KEY-----`, whose label
//! names the token type), mode 0600, with the same JSON sidecar.

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use privacypass_core::{
    IssuerKey, KeyError, KeySet, KeyValidity, TokenKeyId, TokenType, VoprfIssuerKey,
};
use privacypass_stores::durable;

#[derive(Debug, thiserror::Error)]
pub enum KeyDirError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Key { path: PathBuf, source: KeyError },
    #[error("{path}: invalid metadata: {reason}")]
    Metadata { path: PathBuf, reason: String },
    #[error("{0}")]
    Refused(KeyError),
    #[error("no key with id {0}")]
    NotFound(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyDirError + '_ {
    move |source| KeyDirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A key as the directory holds it.
#[derive(Debug)]
pub struct StoredKey {
    pub key: IssuerKey,
    pub validity: KeyValidity,
}

/// A VOPRF key (token type 0x0001 or 0x0005) as the directory holds it.
#[derive(Debug)]
pub struct StoredVoprfKey {
    pub key: VoprfIssuerKey,
    pub validity: KeyValidity,
}

/// A key of any token type the directory holds.
#[derive(Debug)]
pub enum AnyStoredKey {
    BlindRsa(StoredKey),
    Voprf(StoredVoprfKey),
}

impl AnyStoredKey {
    pub fn token_key_id(&self) -> TokenKeyId {
        match self {
            AnyStoredKey::BlindRsa(k) => *k.key.public_key().token_key_id(),
            AnyStoredKey::Voprf(k) => *k.key.public_key().token_key_id(),
        }
    }

    pub fn validity(&self) -> &KeyValidity {
        match self {
            AnyStoredKey::BlindRsa(k) => &k.validity,
            AnyStoredKey::Voprf(k) => &k.validity,
        }
    }

    pub fn token_type(&self) -> TokenType {
        match self {
            AnyStoredKey::BlindRsa(_) => TokenType::BlindRsa2048,
            AnyStoredKey::Voprf(k) => k.key.token_type(),
        }
    }
}

/// The label every VOPRF key file begins with (the core's `VoprfIssuerKey::to_pem`).
const VOPRF_PEM_PREFIX: &[u8] = b"-----BEGIN PRIVACYPASS VOPRF ";

fn pem_path(dir: &Path, id: &TokenKeyId) -> PathBuf {
    dir.join(format!("{}.pem", hex::encode(id)))
}

fn meta_path(dir: &Path, id: &TokenKeyId) -> PathBuf {
    dir.join(format!("{}.json", hex::encode(id)))
}

/// Creates the directory (mode 0700) if it is missing.
pub fn ensure_dir(dir: &Path) -> Result<(), KeyDirError> {
    if !dir.exists() {
        durable::create_dir_all(dir).map_err(io(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

/// Every Blind RSA (type 0x0002) key in the directory, sorted by not-before.
pub fn load(dir: &Path) -> Result<Vec<StoredKey>, KeyDirError> {
    Ok(load_all(dir)?
        .into_iter()
        .filter_map(|k| match k {
            AnyStoredKey::BlindRsa(k) => Some(k),
            AnyStoredKey::Voprf(_) => None,
        })
        .collect())
}

/// Every key in the directory, of every token type, sorted by not-before.
pub fn load_all(dir: &Path) -> Result<Vec<AnyStoredKey>, KeyDirError> {
    let mut keys = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
        Err(e) => {
            return Err(KeyDirError::Io {
                path: dir.to_owned(),
                source: e,
            })
        }
    };
    for entry in entries {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pem") {
            continue;
        }
        let pem = zeroize::Zeroizing::new(fs::read(&path).map_err(io(&path))?);
        let key_error = |source| KeyDirError::Key {
            path: path.clone(),
            source,
        };
        let read_validity = |id: &TokenKeyId| {
            let meta = meta_path(dir, id);
            let text = fs::read_to_string(&meta).map_err(io(&meta))?;
            parse_validity(&text).map_err(|reason| KeyDirError::Metadata { path: meta, reason })
        };
        let stored = if pem.trim_ascii_start().starts_with(VOPRF_PEM_PREFIX) {
            let key = VoprfIssuerKey::from_pem(&pem).map_err(key_error)?;
            let validity = read_validity(key.public_key().token_key_id())?;
            AnyStoredKey::Voprf(StoredVoprfKey { key, validity })
        } else {
            let key = IssuerKey::from_pem(&pem).map_err(key_error)?;
            let validity = read_validity(key.public_key().token_key_id())?;
            AnyStoredKey::BlindRsa(StoredKey { key, validity })
        };
        keys.push(stored);
    }
    keys.sort_by_key(|k| (k.validity().not_before, k.token_key_id()));
    Ok(keys)
}

/// The validity window a key's JSON sidecar holds. `load` reads the files; this and
/// `IssuerKey::from_pem` parse them, `key_set_of` checks the keys together.
pub fn parse_validity(text: &str) -> Result<KeyValidity, String> {
    let validity: KeyValidity = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if validity.not_before >= validity.expires {
        return Err("not-before must be earlier than expires".into());
    }
    Ok(validity)
}

/// The key set of a directory, for an issuer and redeemer.
pub fn key_set(dir: &Path, redemption_grace: u64) -> Result<KeySet, KeyDirError> {
    key_set_of_all(load_all(dir)?, redemption_grace)
}

/// The key set of keys as `load` returns them: each checked against those before it (no
/// duplicate, no truncated-id collision between overlapping issuance windows).
pub fn key_set_of(keys: Vec<StoredKey>, redemption_grace: u64) -> Result<KeySet, KeyDirError> {
    let mut set = KeySet::new(redemption_grace);
    for stored in keys {
        set.insert_issuer_key(stored.key, stored.validity)
            .map_err(KeyDirError::Refused)?;
    }
    Ok(set)
}

/// The key set of keys of every type as `load_all` returns them, each checked against those
/// before it as `key_set_of` checks them (truncated ids are checked across token types).
pub fn key_set_of_all(
    keys: Vec<AnyStoredKey>,
    redemption_grace: u64,
) -> Result<KeySet, KeyDirError> {
    let mut set = KeySet::new(redemption_grace);
    for stored in keys {
        match stored {
            AnyStoredKey::BlindRsa(k) => set
                .insert_issuer_key(k.key, k.validity)
                .map(drop)
                .map_err(KeyDirError::Refused)?,
            AnyStoredKey::Voprf(k) => set
                .insert_voprf_key(k.key, k.validity)
                .map(drop)
                .map_err(KeyDirError::Refused)?,
        }
    }
    Ok(set)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyDirError> {
    let tmp = path.with_extension("pem.tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    durable::replace_file(&tmp, path, bytes, &options).map_err(io(path))
}

fn write_meta(dir: &Path, id: &TokenKeyId, validity: &KeyValidity) -> Result<(), KeyDirError> {
    let path = meta_path(dir, id);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(validity).map_err(|e| KeyDirError::Metadata {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    durable::replace_file(&tmp, &path, (text + "\n").as_bytes(), &options).map_err(io(&path))
}

/// Adds a key to the directory after checking it against the keys already there (no duplicate,
/// no truncated-id collision with an overlapping issuance key).
pub fn add(dir: &Path, key: IssuerKey, validity: KeyValidity) -> Result<TokenKeyId, KeyDirError> {
    ensure_dir(dir)?;
    let mut set = key_set(dir, 0)?;
    let key = set
        .insert_issuer_key(key, validity)
        .map_err(KeyDirError::Refused)?;
    write_key(dir, &key, &validity)
}

/// Generates a key for the directory: the key set's own generation (`KeySet::generate`), which
/// draws again while a truncated id collides with an issuance key.
pub fn generate(dir: &Path, validity: KeyValidity) -> Result<TokenKeyId, KeyDirError> {
    ensure_dir(dir)?;
    let mut set = key_set(dir, 0)?;
    let key = set.generate(validity).map_err(KeyDirError::Refused)?;
    write_key(dir, &key, &validity)
}

/// Adds a VOPRF key (type 0x0001 or 0x0005) to the directory, checked as `add` checks.
pub fn add_voprf(
    dir: &Path,
    key: VoprfIssuerKey,
    validity: KeyValidity,
) -> Result<TokenKeyId, KeyDirError> {
    ensure_dir(dir)?;
    let mut set = key_set(dir, 0)?;
    let key = set
        .insert_voprf_key(key, validity)
        .map_err(KeyDirError::Refused)?;
    write_voprf_key(dir, &key, &validity)
}

/// Generates a VOPRF key of `token_type` for the directory (`KeySet::generate_voprf`, which
/// draws again while a truncated id collides with an issuance key of any type).
pub fn generate_voprf(
    dir: &Path,
    token_type: TokenType,
    validity: KeyValidity,
) -> Result<TokenKeyId, KeyDirError> {
    ensure_dir(dir)?;
    let mut set = key_set(dir, 0)?;
    let key = set
        .generate_voprf(token_type, validity)
        .map_err(KeyDirError::Refused)?;
    write_voprf_key(dir, &key, &validity)
}

fn write_voprf_key(
    dir: &Path,
    key: &VoprfIssuerKey,
    validity: &KeyValidity,
) -> Result<TokenKeyId, KeyDirError> {
    let pem = key.to_pem();
    let id = *key.public_key().token_key_id();
    write_meta(dir, &id, validity)?;
    write_private(&pem_path(dir, &id), &pem)?;
    Ok(id)
}

/// Writes a key the key set took: its validity, then its private key (mode 0600).
fn write_key(
    dir: &Path,
    key: &IssuerKey,
    validity: &KeyValidity,
) -> Result<TokenKeyId, KeyDirError> {
    let pem = key.to_pkcs8_pem().map_err(KeyDirError::Refused)?;
    let id = *key.public_key().token_key_id();
    write_meta(dir, &id, validity)?;
    write_private(&pem_path(dir, &id), &pem)?;
    Ok(id)
}

/// Ends a key's issuance now; it stays redeemable for the grace.
pub fn retire(dir: &Path, id_prefix: &str, now: u64) -> Result<TokenKeyId, KeyDirError> {
    let matches: Vec<AnyStoredKey> = load_all(dir)?
        .into_iter()
        .filter(|k| hex::encode(k.token_key_id()).starts_with(&id_prefix.to_ascii_lowercase()))
        .collect();
    let [stored] = matches.as_slice() else {
        return Err(KeyDirError::NotFound(format!(
            "{id_prefix} (matches {} keys)",
            matches.len()
        )));
    };
    let id = stored.token_key_id();
    let mut validity = *stored.validity();
    if validity.expires > now {
        // Issuance stops now; a key imported in this very second (or still
        // pending) gets a window that ended, so it is in grace at once.
        validity.expires = now;
        validity.not_before = validity.not_before.min(now.saturating_sub(1));
    }
    write_meta(dir, &id, &validity)?;
    Ok(id)
}

/// The id, token type and validity window of every key in the directory, read from the file
/// names, the PEM labels and the sidecars without parsing a private key: what rotation plans
/// with (the keys themselves are checked when a daemon loads them).
pub fn windows(dir: &Path) -> Result<Vec<(TokenKeyId, TokenType, KeyValidity)>, KeyDirError> {
    use std::io::Read;
    let mut keys = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pem") {
            continue;
        }
        let id: Option<TokenKeyId> = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| hex::decode(s).ok())
            .and_then(|b| b.try_into().ok());
        let Some(id) = id else {
            return Err(KeyDirError::Metadata {
                path,
                reason: "not named by a token key id".into(),
            });
        };
        let mut head = [0u8; 64];
        let n = fs::File::open(&path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(io(&path))?;
        let head = head[..n].trim_ascii_start();
        let token_type = if !head.starts_with(VOPRF_PEM_PREFIX) {
            TokenType::BlindRsa2048
        } else if head[VOPRF_PEM_PREFIX.len()..].starts_with(b"P384") {
            TokenType::VoprfP384
        } else {
            TokenType::VoprfRistretto255
        };
        let meta = meta_path(dir, &id);
        let text = fs::read_to_string(&meta).map_err(io(&meta))?;
        let validity =
            parse_validity(&text).map_err(|reason| KeyDirError::Metadata { path: meta, reason })?;
        keys.push((id, token_type, validity));
    }
    keys.sort_by_key(|(id, _, v)| (v.not_before, *id));
    Ok(keys)
}

/// Gives a key a new validity window (rotation extends the issuing key to meet the next).
pub fn set_validity(
    dir: &Path,
    id: &TokenKeyId,
    validity: &KeyValidity,
) -> Result<(), KeyDirError> {
    write_meta(dir, id, validity)
}

/// Removes a key whose redemption ended: its private key, then its validity.
pub fn remove(dir: &Path, id: &TokenKeyId) -> Result<(), KeyDirError> {
    for path in [pem_path(dir, id), meta_path(dir, id)] {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(KeyDirError::Io { path, source: e }),
        }
    }
    durable::sync_dir(dir).map_err(io(dir))
}

/// What the directory holds, as a number that changes when a key file is added, removed or
/// rewritten (names, sizes and modification times of the key and validity files): what a
/// daemon polls to notice a rotation without SIGHUP.
pub fn fingerprint(dir: &Path) -> Result<u64, KeyDirError> {
    use std::hash::{Hash, Hasher};
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let is_key = name
            .to_str()
            .is_some_and(|n| n.ends_with(".pem") || n.ends_with(".json"));
        if !is_key {
            continue;
        }
        let meta = entry.metadata().map_err(io(&entry.path()))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        files.push((name, meta.len(), modified));
    }
    files.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    files.hash(&mut hasher);
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn retire_in_the_second_a_key_starts_puts_it_in_grace() {
        let dir = tempfile::tempdir().unwrap();
        let id = generate(dir.path(), KeyValidity::new(1000, 5000).unwrap()).unwrap();
        retire(dir.path(), &hex::encode(id), 1000).unwrap();
        let set = key_set(dir.path(), 60).unwrap();
        let entry = set.get(&id).unwrap();
        assert_eq!(
            set.state(&entry.validity, 1000),
            privacypass_core::keys::KeyState::Grace
        );
        // Retiring twice changes nothing.
        retire(dir.path(), &hex::encode(id), 1001).unwrap();
        let again = key_set(dir.path(), 60).unwrap();
        assert_eq!(again.get(&id).unwrap().validity, entry.validity);
    }
}
