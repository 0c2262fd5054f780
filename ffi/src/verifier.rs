//! `pp_verifier` (verification against issuer public keys) and `pp_redeemer` (verification plus
//! an exactly-once spend store opened by URL).

use std::ffi::c_char;
use std::sync::{Arc, PoisonError, RwLock};

use privacypass_core::directory::{DirectoryError, IssuerDirectory};
use privacypass_core::header::{parse_authorization, HeaderError};
use privacypass_core::{KeySet, KeyValidity, PublicKey, Redeemer, TokenType, Verifier};
use privacypass_stores::OpenError;

use crate::boundary::{
    borrow, c_str, ffi_panic_boundary, free, give, handle_out, input, input_header, input_str,
    optional_input,
};
use crate::issuer::{pp_issuer, IssuerKind};
use crate::result::{pp_result, undecodable_token};

/// A token verifier: the public keys of one or more issuers. Immutable once built; backed by an
/// `Arc`, so one verifier may be shared by any number of threads without locking.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct pp_verifier {
    verifier: Verifier,
}

/// A redeemer: a verifier plus a spend store, so that each token is accepted once. Safe to share
/// across threads (the store serializes what must be serialized); backed by an `Arc`. Whether
/// one made before `fork()` may be used in the child depends on its store: see
/// `pp_redeemer_new`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct pp_redeemer {
    /// One redeemer for every type its keys verify; `pp_redeemer_set_keys` swaps its keys.
    redeemer: RwLock<Redeemer>,
    /// Whether its keys are private VOPRF keys (made from a VOPRF issuer): otherwise a token of
    /// type 1 or 5 answers `PP_ERR_PRIVATE_TOKEN_TYPE`, as the verifiers do.
    private_keys: bool,
}

/// Whether `token` says it is of a privately verifiable type (1 or 5).
fn is_private_type(token: &[u8]) -> bool {
    match *token {
        [high, low, ..] => TokenType::from_value(u16::from_be_bytes([high, low]))
            .is_some_and(TokenType::is_privately_verifiable),
        _ => false,
    }
}

/// Keys loaded from SPKI or PEM are valid from the epoch on, with no end: their lifetime is the
/// caller's to manage (build a new verifier to drop a key).
fn unbounded() -> Result<KeyValidity, pp_result> {
    KeyValidity::new(0, u64::MAX).map_err(|_| pp_result::PP_ERR_INTERNAL)
}

fn insert(set: &mut KeySet, key: PublicKey, validity: KeyValidity) -> Result<(), pp_result> {
    if set.get(key.token_key_id()).is_some() {
        // The same key listed twice: the first listing stands.
        return Ok(());
    }
    set.insert_public_key(key, validity)
        .map(drop)
        .map_err(|_| pp_result::PP_ERR_INVALID_KEY)
}

fn verifier_of(set: KeySet) -> pp_verifier {
    pp_verifier {
        verifier: Verifier::new(Arc::new(set)),
    }
}

pub(crate) fn keys_from_pem(pem: &str) -> Result<KeySet, pp_result> {
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    let mut set = KeySet::new(0);
    let validity = unbounded()?;
    for (start, _) in pem.match_indices(BEGIN) {
        let key = PublicKey::from_pem(&pem[start..]).map_err(|_| pp_result::PP_ERR_INVALID_KEY)?;
        insert(&mut set, key, validity)?;
    }
    if set.entries().is_empty() {
        return Err(pp_result::PP_ERR_INVALID_KEY);
    }
    Ok(set)
}

/// An issuer directory, its key encodings undecodable answered as a bad key.
pub(crate) fn read_directory(json: &[u8]) -> Result<IssuerDirectory, pp_result> {
    IssuerDirectory::from_json(json).map_err(|e| match e {
        DirectoryError::KeyEncoding(_) => pp_result::PP_ERR_INVALID_KEY,
        _ => pp_result::PP_ERR_INVALID_INPUT,
    })
}

/// The token type 2 keys of an RFC 9578 §4 issuer directory
/// (`privacypass_core::directory::IssuerDirectory`), each valid from its `not-before` (the epoch when
/// absent). Keys of other token types are skipped; a key listed twice counts once.
pub(crate) fn keys_from_directory(json: &[u8]) -> Result<KeySet, pp_result> {
    let directory = read_directory(json)?;
    let mut set = KeySet::new(0);
    for entry in directory.keys_of_type(TokenType::BlindRsa2048) {
        let key =
            PublicKey::from_spki(&entry.token_key).map_err(|_| pp_result::PP_ERR_INVALID_KEY)?;
        let validity = KeyValidity::new(entry.not_before.unwrap_or(0), u64::MAX)
            .map_err(|_| pp_result::PP_ERR_INVALID_INPUT)?;
        insert(&mut set, key, validity)?;
    }
    if set.entries().is_empty() {
        return Err(pp_result::PP_ERR_INVALID_KEY);
    }
    Ok(set)
}

/// The token bytes of an `Authorization: PrivateToken token=...` value.
fn token_of_authorization(value: &str) -> Result<Vec<u8>, pp_result> {
    parse_authorization(value).map_err(|e| match e {
        HeaderError::Decode(e) => undecodable_token(e),
        _ => pp_result::PP_ERR_INVALID_PARAMS,
    })
}

/// The expected challenges: none for an empty challenge, else the one given.
fn expected(challenge: Option<&[u8]>) -> Vec<&[u8]> {
    challenge.into_iter().collect()
}

/// Verifies `token` now, bound to `challenge` when one is given.
fn verify_now(
    verifier: &Verifier,
    token: &[u8],
    challenge: Option<&[u8]>,
) -> Result<(), pp_result> {
    if is_private_type(token) {
        return Err(pp_result::PP_ERR_PRIVATE_TOKEN_TYPE);
    }
    verifier
        .verify(token, &expected(challenge), privacypass_core::unix_now())
        .map(drop)
        .map_err(|e| e.code().into())
}

/// Verifies `token` now and records its spend: a token of type 1 or 5 only with VOPRF keys.
fn redeem_now(
    redeemer: &pp_redeemer,
    token: &[u8],
    challenge: Option<&[u8]>,
) -> Result<(), pp_result> {
    if is_private_type(token) && !redeemer.private_keys {
        return Err(pp_result::PP_ERR_PRIVATE_TOKEN_TYPE);
    }
    // The keys at the start of the call serve it whole, even if they are swapped meanwhile.
    let current = redeemer
        .redeemer
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    current
        .redeem(token, &expected(challenge), privacypass_core::unix_now())
        .map(drop)
        .map_err(|e| e.code().into())
}

/// A verifier for one issuer public key given as a SubjectPublicKeyInfo, DER: the RSASSA-PSS
/// form of RFC 9578 (the `token-key` of a challenge or directory, decoded) or a plain
/// rsaEncryption key. The key is valid from the epoch on, without end.
///
/// Returns `PP_ERR_INVALID_KEY` when it is not an RSA-2048 key with e = 65537 and the
/// RSASSA-PSS SHA-384 parameters. `*out` is written only on success; free it with
/// `pp_verifier_free`.
#[no_mangle]
pub unsafe extern "C" fn pp_verifier_new_from_spki(
    spki: *const u8,
    spki_len: usize,
    out: *mut *mut pp_verifier,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a valid buffer and out-pointer.
        let spki = unsafe { input(spki, spki_len) }?;
        let out = handle_out(out)?;
        let key = PublicKey::from_spki(spki).map_err(|_| pp_result::PP_ERR_INVALID_KEY)?;
        let mut set = KeySet::new(0);
        insert(&mut set, key, unbounded()?)?;
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, verifier_of(set)) };
        Ok(())
    }
}

/// A verifier for the keys of a PEM text: every `-----BEGIN PUBLIC KEY-----` block in it (at
/// least one), each valid from the epoch on, without end.
///
/// Returns `PP_ERR_INVALID_KEY` when there is no block or one is not a usable key,
/// `PP_ERR_INVALID_INPUT` when the text is not UTF-8.
#[no_mangle]
pub unsafe extern "C" fn pp_verifier_new_from_pem(
    pem: *const c_char,
    pem_len: usize,
    out: *mut *mut pp_verifier,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a valid buffer and out-pointer.
        let pem = unsafe { input_str(pem, pem_len) }?;
        let out = handle_out(out)?;
        let set = keys_from_pem(pem)?;
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, verifier_of(set)) };
        Ok(())
    }
}

/// A verifier for the token type 2 keys of an RFC 9578 issuer directory (the JSON of
/// `/.well-known/private-token-issuer-directory`). Each key is valid from its `not-before`
/// (the epoch when absent) on, without end; keys of other token types are skipped.
///
/// Returns `PP_ERR_INVALID_INPUT` for JSON that is not a directory (a member missing or of the
/// wrong type, more than 256 KiB or 256 keys), `PP_ERR_INVALID_KEY` when a `token-key` is not
/// base64, a type 2 key is unusable or there is none.
#[no_mangle]
pub unsafe extern "C" fn pp_verifier_new_from_directory(
    json: *const c_char,
    json_len: usize,
    out: *mut *mut pp_verifier,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a valid buffer and out-pointer.
        let json = unsafe { input(json.cast(), json_len) }?;
        let out = handle_out(out)?;
        let set = keys_from_directory(json)?;
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, verifier_of(set)) };
        Ok(())
    }
}

/// Frees a verifier. NULL is a no-op. Redeemers made from it stay valid.
#[no_mangle]
pub unsafe extern "C" fn pp_verifier_free(verifier: *mut pp_verifier) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a handle from pp_verifier_new_* (or NULL), once.
        unsafe { free(verifier) }
    }
}

/// Verifies an encoded Token (RFC 9577 §2.2) at the current time (system clock).
///
/// `challenge` is the encoded TokenChallenge the token must be bound to, or empty (`(NULL, 0)`)
/// to accept a token bound to any challenge. Records nothing: a verified token verifies again
/// (use a `pp_redeemer` to spend tokens once).
///
/// Returns `PP_OK`, `PP_ERR_VERIFICATION_FAILED` (bad authenticator, other challenge, unknown
/// or not yet valid key), `PP_ERR_INVALID_PARAMS` (bytes that are not a well-formed token:
/// truncated, too long, trailing bytes) or `PP_ERR_UNSUPPORTED_TOKEN` (a token of another type
/// than 2).
#[no_mangle]
pub unsafe extern "C" fn pp_verifier_verify(
    verifier: *const pp_verifier,
    token: *const u8,
    token_len: usize,
    challenge: *const u8,
    challenge_len: usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle and valid buffers.
        let verifier = unsafe { borrow(verifier) }?;
        // SAFETY: as above.
        let token = unsafe { input(token, token_len) }?;
        // SAFETY: as above.
        let challenge = unsafe { optional_input(challenge, challenge_len) }?;
        verify_now(&verifier.verifier, token, challenge)
    }
}

/// As `pp_verifier_verify`, for the value of an `Authorization` header
/// (`PrivateToken token="<base64url Token>"`, quoted or not, padded or not).
///
/// Returns `PP_ERR_INVALID_PARAMS` when the value is not exactly one PrivateToken credential
/// with one valid base64url `token` parameter, or when that parameter is not a well-formed
/// token, as `pp_verifier_verify` answers for the bytes.
#[no_mangle]
pub unsafe extern "C" fn pp_verifier_verify_authorization(
    verifier: *const pp_verifier,
    authorization: *const c_char,
    authorization_len: usize,
    challenge: *const u8,
    challenge_len: usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle and valid buffers.
        let verifier = unsafe { borrow(verifier) }?;
        // SAFETY: as above.
        let value = unsafe { input_header(authorization, authorization_len) }?;
        // SAFETY: as above.
        let challenge = unsafe { optional_input(challenge, challenge_len) }?;
        let token = token_of_authorization(value)?;
        verify_now(&verifier.verifier, &token, challenge)
    }
}

/// A redeemer verifying with `verifier`'s keys and recording spends in the store `store_url`
/// (NUL-terminated) names:
///
/// - `memory:` or `memory:CAPACITY`: in this process only, bounded (default 1,000,000 spends;
///   when full, expired spends are dropped, then new spends are refused with
///   `PP_ERR_STORE_UNAVAILABLE`, never forgotten). No threads. The spends belong to the
///   process that made the redeemer: in a child of `fork()` its copy would accept each token
///   once more, so there every redeem answers `PP_ERR_STORE_UNAVAILABLE`. Open the redeemer in
///   the process that redeems (in each worker, after `fork()`).
/// - `rocksdb:PATH`: embedded RocksDB, durable (a spend is acknowledged once its write-ahead log
///   is synced); one process at a time per PATH. RocksDB runs its own background threads, which
///   `fork()` does not copy: open it after `fork()`, in the process that uses it, and never use
///   one made before `fork()` in the child.
/// - `redis://[[USER]:PASSWORD@]HOST:PORT[/DB]` and `redis+cluster://[[USER]:PASSWORD@]H1:P1,H2:P2,...`:
///   Redis or Valkey, standalone or cluster, shared with every other redeemer (daemons, other
///   hosts) on the same store: a token is spent once among all of them. Options
///   `?pool=N&timeout_ms=MS` (default 4 connections, 2000 ms connect/read/write timeout), and
///   for a standalone primary `&wait=N&wait_timeout_ms=MS` (default 100 ms): a spend is
///   acknowledged only once `WAIT` reports it on N replicas, else `PP_ERR_STORE_UNAVAILABLE`.
///   Concurrent redemptions share pipelined round trips. A spend is acknowledged only on
///   Redis's reply; Redis must run with `appendonly yes` and `appendfsync always` for it to
///   survive a Redis crash. Opening checks that Redis answers (one connection, then closed:
///   `PP_ERR_STORE_UNAVAILABLE` if it does not); the redeemer's connections are made on first
///   use, by the process that redeems, so a redeemer made before `fork()` is safe to use in the
///   child (it opens its own). A Redis that is down or times out answers
///   `PP_ERR_STORE_UNAVAILABLE`, and the redeemer reconnects by itself once Redis is back.
///
/// The redeemer keeps its own reference to the verifier's keys: the verifier may be freed
/// first; `pp_redeemer_set_keys` replaces them. Returns `PP_ERR_INVALID_STORE_URL` for a URL of another form and
/// `PP_ERR_STORE_UNAVAILABLE` when the store cannot be opened.
#[no_mangle]
pub unsafe extern "C" fn pp_redeemer_new(
    verifier: *const pp_verifier,
    store_url: *const c_char,
    out: *mut *mut pp_redeemer,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle, a NUL-terminated string and an out-pointer.
        let verifier = unsafe { borrow(verifier) }?;
        // SAFETY: as above.
        let url = unsafe { c_str(store_url) }?;
        let out = handle_out(out)?;
        let store = open_store(url)?;
        let redeemer = Redeemer::new(verifier.verifier.clone(), store);
        // SAFETY: `out` was checked by `handle_out`.
        unsafe {
            give(
                out,
                pp_redeemer {
                    redeemer: RwLock::new(redeemer),
                    private_keys: false,
                },
            )
        };
        Ok(())
    }
}

fn open_store(url: &str) -> Result<Arc<dyn privacypass_core::SpendStore>, pp_result> {
    privacypass_stores::open(url).map_err(|e| match e {
        OpenError::UnsupportedUrl(_) | OpenError::InvalidUrl { .. } => {
            pp_result::PP_ERR_INVALID_STORE_URL
        }
        _ => pp_result::PP_ERR_STORE_UNAVAILABLE,
    })
}

/// A redeemer verifying with the key of `issuer` and recording spends in the store `store_url`
/// names (the same URLs as `pp_redeemer_new`). For a VOPRF issuer (token type 1 or 5) this is
/// how an origin verifies its tokens: only the private key does; for an RSA issuer it verifies
/// with its public key, as `pp_redeemer_new` would. The redeemer keeps its own reference to the
/// key: the issuer may be freed first.
///
/// Returns `PP_ERR_INVALID_STORE_URL` for a URL of another form and
/// `PP_ERR_STORE_UNAVAILABLE` when the store cannot be opened.
#[no_mangle]
pub unsafe extern "C" fn pp_redeemer_new_from_issuer(
    issuer: *const pp_issuer,
    store_url: *const c_char,
    out: *mut *mut pp_redeemer,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle, a NUL-terminated string and an out-pointer.
        let issuer = unsafe { borrow(issuer) }?;
        // SAFETY: as above.
        let url = unsafe { c_str(store_url) }?;
        let out = handle_out(out)?;
        let store = open_store(url)?;
        let (keys, private_keys) = match &issuer.kind {
            IssuerKind::Rsa { issuer, .. } => (issuer.keys(), false),
            IssuerKind::Voprf { issuer, .. } => (issuer.keys(), true),
        };
        let redeemer = pp_redeemer {
            redeemer: RwLock::new(Redeemer::new(Verifier::new(keys.clone()), store)),
            private_keys,
        };
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, redeemer) };
        Ok(())
    }
}

/// Replaces the keys `redeemer` verifies with by `verifier`'s, all at once: a redeem that began
/// before verifies with the old keys, every one after with the new, and no redeem ever sees a
/// mix of the two. The store and the spends it holds stay: a token spent before is still spent.
/// This is how an origin keeps a long-lived redeemer current with its issuer's directory
/// (`pp_verifier_new_from_directory` on each new body, then this call). The redeemer keeps
/// its own reference to the keys: the verifier may be freed after.
///
/// Returns `PP_ERR_INVALID_KEY` for a redeemer made from a VOPRF issuer
/// (`pp_redeemer_new_from_issuer`), whose private key public keys cannot replace; it keeps its
/// keys.
#[no_mangle]
pub unsafe extern "C" fn pp_redeemer_set_keys(
    redeemer: *const pp_redeemer,
    verifier: *const pp_verifier,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes live handles.
        let redeemer = unsafe { borrow(redeemer) }?;
        // SAFETY: as above.
        let verifier = unsafe { borrow(verifier) }?;
        if redeemer.private_keys {
            return Err(pp_result::PP_ERR_INVALID_KEY);
        }
        let mut current = redeemer
            .redeemer
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *current = Redeemer::new(verifier.verifier.clone(), current.store().clone());
        Ok(())
    }
}

/// Frees a redeemer, closing its store when it was the last user. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pp_redeemer_free(redeemer: *mut pp_redeemer) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a handle from pp_redeemer_new (or NULL), once.
        unsafe { free(redeemer) }
    }
}

/// Verifies an encoded Token as `pp_verifier_verify` does, then records its spend: `PP_OK` only
/// once the store has recorded it, `PP_ERR_ALREADY_SPENT` for every later attempt (concurrent
/// ones included), `PP_ERR_STORE_UNAVAILABLE` when the store could not record it (nothing was
/// recorded: the token may be redeemed again later; a `memory:` redeemer used in a child of
/// `fork()` answers it every time).
#[no_mangle]
pub unsafe extern "C" fn pp_redeemer_redeem(
    redeemer: *const pp_redeemer,
    token: *const u8,
    token_len: usize,
    challenge: *const u8,
    challenge_len: usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle and valid buffers.
        let redeemer = unsafe { borrow(redeemer) }?;
        // SAFETY: as above.
        let token = unsafe { input(token, token_len) }?;
        // SAFETY: as above.
        let challenge = unsafe { optional_input(challenge, challenge_len) }?;
        redeem_now(redeemer, token, challenge)
    }
}

/// As `pp_redeemer_redeem`, for the value of an `Authorization` header; a malformed value
/// answers `PP_ERR_INVALID_PARAMS`.
#[no_mangle]
pub unsafe extern "C" fn pp_redeemer_redeem_authorization(
    redeemer: *const pp_redeemer,
    authorization: *const c_char,
    authorization_len: usize,
    challenge: *const u8,
    challenge_len: usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle and valid buffers.
        let redeemer = unsafe { borrow(redeemer) }?;
        // SAFETY: as above.
        let value = unsafe { input_header(authorization, authorization_len) }?;
        // SAFETY: as above.
        let challenge = unsafe { optional_input(challenge, challenge_len) }?;
        let token = token_of_authorization(value)?;
        redeem_now(redeemer, &token, challenge)
    }
}
