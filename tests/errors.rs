//! Every failure of the issuer, verifier, redeemer and key set is its own error, with the code
//! of the error table (the README's "Errors", `src/codes.rs`) it maps to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use privacypass_core::issuer::IssueError;
use privacypass_core::keys::KeyState;
use privacypass_core::verifier::{Verified, VerifyError};
use privacypass_core::wire::{DecodeError, NONCE_LEN};
use privacypass_core::{
    Client, ErrorCode, Issuer, IssuerKey, KeyError, KeySet, KeyValidity, MemoryStore, RedeemError,
    Redeemer, SpendOutcome, SpendStore, StoreError, Token, TokenChallenge, TokenKeyId, Verifier,
};

const NOW: u64 = 1_700_000_000;

/// What the daemon does before it records a spend: verify, then the spent check.
fn verify_unspent(
    redeemer: &Redeemer,
    token: &[u8],
    challenges: &[&[u8]],
    now: u64,
) -> Result<Verified, RedeemError> {
    redeemer.check_not_spent(redeemer.verify(token, challenges, now)?)
}

/// `verify_unspent` for bytes verified before.
fn verify_unspent_seen_before(
    redeemer: &Redeemer,
    token: &[u8],
    challenges: &[&[u8]],
    now: u64,
) -> Result<Verified, RedeemError> {
    redeemer.check_not_spent(redeemer.verify_seen_before(token, challenges, now)?)
}

fn setup(validity: KeyValidity, grace: u64) -> (Arc<KeySet>, Arc<IssuerKey>) {
    let mut set = KeySet::new(grace);
    let key = set.generate(validity).unwrap();
    (Arc::new(set), key)
}

fn token_for(keys: &Arc<KeySet>, key: &IssuerKey, challenge: &TokenChallenge, at: u64) -> Vec<u8> {
    let pending = Client::new(key.public_key().clone())
        .request(challenge)
        .unwrap();
    let response = Issuer::new(keys.clone())
        .issue(
            key.public_key().token_key_id(),
            &pending.request().encode(),
            at,
        )
        .unwrap();
    pending.finalize(&response).unwrap().encode()
}

fn challenge() -> TokenChallenge {
    TokenChallenge::new(2, b"issuer.example", &[], b"").unwrap()
}

#[test]
fn issuer_errors() {
    let (keys, key) = setup(KeyValidity::new(NOW - 10, NOW + 10).unwrap(), 0);
    let issuer = Issuer::new(keys.clone());
    let id = *key.public_key().token_key_id();
    let pending = Client::new(key.public_key().clone())
        .request(&challenge())
        .unwrap();
    let request = pending.request().encode();

    let err = issuer.issue(&[0; 32], &request, NOW).unwrap_err();
    assert_eq!(
        (err.clone(), err.code()),
        (IssueError::UnknownKey, ErrorCode::UnknownIssuanceKey)
    );
    assert_eq!(
        issuer.issue(&id, &request, NOW + 10),
        Err(IssueError::UnknownKey),
        "expired"
    );
    assert_eq!(
        issuer.issue(&id, &request, NOW - 11),
        Err(IssueError::UnknownKey),
        "not yet"
    );
    assert_eq!(
        issuer.issue(&id, &request[..100], NOW),
        Err(IssueError::WrongLength(100))
    );
    let mut typed = request.clone();
    typed[1] = 1;
    assert_eq!(
        issuer.issue(&id, &typed, NOW),
        Err(IssueError::WrongTokenType(1))
    );
    let mut truncated = request.clone();
    truncated[2] ^= 1;
    assert!(matches!(
        issuer.issue(&id, &truncated, NOW),
        Err(IssueError::TruncatedIdMismatch { .. })
    ));
    assert!(matches!(
        issuer.issue_request(&truncated, NOW),
        Err(IssueError::UnknownTruncatedKey(_))
    ));
    assert_eq!(
        issuer.issue(&id, &[0xff; 256], NOW),
        Err(IssueError::NotBelowModulus)
    );
    assert_eq!(
        issuer.issue(&id, key.public_key().modulus(), NOW),
        Err(IssueError::NotBelowModulus)
    );
    assert!(matches!(
        issuer.issue_request(&request[..200], NOW),
        Err(IssueError::Malformed(DecodeError::Truncated { .. }))
    ));
    assert_eq!(
        issuer.issue_request(&[0, 9, 0], NOW),
        Err(IssueError::WrongTokenType(9))
    );
    for e in [
        IssueError::WrongLength(1),
        IssueError::WrongTokenType(1),
        IssueError::NotBelowModulus,
        IssueError::UnknownTruncatedKey(1),
    ] {
        assert_eq!(e.code(), ErrorCode::UnprocessableBlindedToken);
    }
    assert!(issuer.issue(&id, &request, NOW).is_ok());
}

#[test]
fn verifier_errors() {
    let (keys, key) = setup(KeyValidity::new(NOW - 10, NOW + 10).unwrap(), 100);
    let verifier = Verifier::new(keys.clone());
    let c = challenge();
    let token = token_for(&keys, &key, &c, NOW);
    let enc = c.encode();
    assert!(verifier.verify(&token, &[&enc], NOW).is_ok());
    assert!(
        verifier.verify(&token, &[], NOW).is_ok(),
        "no binding requested"
    );
    assert!(
        verifier.verify(&token, &[&enc], NOW + 109).is_ok(),
        "within the grace"
    );
    assert_eq!(
        verifier.verify(&token, &[&enc], NOW + 110).unwrap_err(),
        VerifyError::KeyNotValid
    );
    assert_eq!(
        verifier.verify(&token, &[&enc], NOW - 11).unwrap_err(),
        VerifyError::KeyNotValid
    );

    let other = TokenChallenge::new(2, b"other.example", &[], b"")
        .unwrap()
        .encode();
    assert_eq!(
        verifier.verify(&token, &[&other], NOW).unwrap_err(),
        VerifyError::ChallengeMismatch
    );
    assert!(
        verifier.verify(&token, &[&other, &enc], NOW).is_ok(),
        "one of several bindings"
    );

    let mut unknown = token.clone();
    unknown[70] ^= 1;
    assert_eq!(
        verifier.verify(&unknown, &[], NOW).unwrap_err(),
        VerifyError::UnknownKey
    );
    let mut bad = token.clone();
    bad[200] ^= 1;
    assert_eq!(
        verifier.verify(&bad, &[], NOW).unwrap_err(),
        VerifyError::BadAuthenticator
    );
    let mut huge = Token::decode(&token).unwrap();
    huge.authenticator = key.public_key().modulus().to_vec();
    assert_eq!(
        verifier.verify(&huge.encode(), &[], NOW).unwrap_err(),
        VerifyError::AuthenticatorNotBelowModulus
    );
    let mut typed = token.clone();
    typed[1] = 3;
    let err = verifier.verify(&typed, &[], NOW).unwrap_err();
    assert_eq!(
        (err.clone(), err.code()),
        (
            VerifyError::UnsupportedTokenType(3),
            ErrorCode::UnsupportedToken
        )
    );
    // Type 1 (VOPRF), which the wire format knows but this verifier holds no key of: -32022
    // at its own length (2 + 32 + 32 + 32 + 48 bytes) and at type 2's.
    for len in [146, token.len()] {
        let mut voprf = vec![0u8; len];
        voprf[1] = 1;
        let err = verifier.verify(&voprf, &[], NOW).unwrap_err();
        assert_eq!(
            (err.clone(), err.code()),
            (
                VerifyError::UnsupportedTokenType(1),
                ErrorCode::UnsupportedToken
            ),
            "{len} bytes"
        );
    }
    // Bytes that are not a token of the served type: invalid params, whatever the decoder
    // found; a type this verifier does not serve stays -32022 (above).
    let mut long = token.clone();
    long.push(0);
    for (bytes, what) in [
        (&token[..300], "truncated"),
        (&token[..1], "shorter than a type"),
        (&[][..], "empty"),
        (&long[..], "one byte too many"),
    ] {
        let err = verifier.verify(bytes, &[], NOW).unwrap_err();
        assert!(matches!(err, VerifyError::Malformed(_)), "{what}: {err:?}");
        assert_eq!(err.code(), ErrorCode::InvalidParams, "{what}");
    }
    assert!(matches!(
        verifier.verify(&token[..300], &[], NOW).unwrap_err(),
        VerifyError::Malformed(DecodeError::Truncated { .. })
    ));
    assert_eq!(
        VerifyError::BadAuthenticator.code(),
        ErrorCode::VerificationFailed
    );
}

#[test]
fn redeemer_spends_once() {
    let (keys, key) = setup(KeyValidity::new(NOW - 10, NOW + 10).unwrap(), 0);
    let redeemer = Redeemer::new(
        Verifier::new(keys.clone()),
        Arc::new(MemoryStore::default()),
    );
    let token = token_for(&keys, &key, &challenge(), NOW);
    assert!(redeemer.redeem(&token, &[], NOW).is_ok());
    let err = redeemer.redeem(&token, &[], NOW).unwrap_err();
    assert_eq!(
        (err.clone(), err.code()),
        (RedeemError::AlreadySpent, ErrorCode::AlreadySpent)
    );
    // The two halves: a spent token fails the check before recording; a forged token with a
    // spent nonce still fails verification first.
    assert_eq!(
        verify_unspent(&redeemer, &token, &[], NOW).unwrap_err(),
        RedeemError::AlreadySpent
    );
    let mut forged = token.clone();
    forged[150] ^= 1;
    assert_eq!(
        verify_unspent(&redeemer, &forged, &[], NOW)
            .unwrap_err()
            .code(),
        ErrorCode::VerificationFailed
    );
    let fresh = token_for(&keys, &key, &challenge(), NOW);
    let verified = verify_unspent(&redeemer, &fresh, &[], NOW).unwrap();
    redeemer.record(&verified).unwrap();
    assert_eq!(
        redeemer.record(&verified).unwrap_err(),
        RedeemError::AlreadySpent
    );
    let full = Redeemer::new(Verifier::new(keys.clone()), Arc::new(MemoryStore::new(0)));
    let other = token_for(&keys, &key, &challenge(), NOW);
    assert_eq!(
        full.redeem(&other, &[], NOW).unwrap_err().code(),
        ErrorCode::StoreUnavailable
    );
}

/// A store that counts what it is asked.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    spends: AtomicUsize,
    checks: AtomicUsize,
}

impl SpendStore for Counting {
    fn spend(
        &self,
        key_id: &TokenKeyId,
        nonce: &[u8; NONCE_LEN],
        expires_at: u64,
    ) -> Result<SpendOutcome, StoreError> {
        self.spends.fetch_add(1, Ordering::SeqCst);
        self.inner.spend(key_id, nonce, expires_at)
    }

    fn is_spent(&self, key_id: &TokenKeyId, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError> {
        self.checks.fetch_add(1, Ordering::SeqCst);
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
}

#[test]
fn redeem_asks_the_store_once() {
    // On a shared store every question is a round trip: the spend alone tells a spent token.
    let (keys, key) = setup(KeyValidity::new(NOW - 10, NOW + 10).unwrap(), 0);
    let store = Arc::new(Counting::default());
    let redeemer = Redeemer::new(Verifier::new(keys.clone()), store.clone());
    let token = token_for(&keys, &key, &challenge(), NOW);
    assert!(redeemer.redeem(&token, &[], NOW).is_ok());
    assert_eq!(
        redeemer.redeem(&token, &[], NOW).unwrap_err(),
        RedeemError::AlreadySpent
    );
    // A forgery is refused before the store is asked anything.
    let mut forged = token_for(&keys, &key, &challenge(), NOW);
    forged[150] ^= 1;
    assert_eq!(
        redeemer.redeem(&forged, &[], NOW).unwrap_err().code(),
        ErrorCode::VerificationFailed
    );
    assert_eq!(
        (
            store.spends.load(Ordering::SeqCst),
            store.checks.load(Ordering::SeqCst)
        ),
        (2, 0)
    );
}

#[test]
fn key_set_refuses_truncated_id_collisions() {
    // Draw keys until two share a truncated id (expected within about 20 draws).
    let mut seen: Vec<IssuerKey> = Vec::new();
    let (first, second) = loop {
        let key = IssuerKey::generate().unwrap();
        let t = key.public_key().truncated_token_key_id();
        if let Some(pos) = seen
            .iter()
            .position(|k| k.public_key().truncated_token_key_id() == t)
        {
            break (seen.swap_remove(pos), key);
        }
        seen.push(key);
    };
    let pem_first = first.to_pkcs8_pem().unwrap();
    let pem_second = second.to_pkcs8_pem().unwrap();
    let mut set = KeySet::new(0);
    set.insert_issuer_key(first, KeyValidity::new(0, 100).unwrap())
        .unwrap();
    let err = set
        .insert_issuer_key(second, KeyValidity::new(50, 150).unwrap())
        .unwrap_err();
    assert!(matches!(err, KeyError::TruncatedIdCollision { .. }));
    assert!(err.to_string().contains("retire"), "{err}");
    // Windows that do not overlap may share a truncated id.
    set.insert_issuer_key(
        IssuerKey::from_pem(&pem_second).unwrap(),
        KeyValidity::new(100, 200).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        set.insert_issuer_key(
            IssuerKey::from_pem(&pem_first).unwrap(),
            KeyValidity::new(0, 1).unwrap()
        ),
        Err(KeyError::Duplicate(_))
    ));
    assert_eq!(
        set.issuance_key_by_truncated(set.entries()[0].public.truncated_token_key_id(), 120)
            .map(|k| k.public_key().token_key_id()),
        Some(set.entries()[1].public.token_key_id())
    );
}

#[test]
fn generated_key_sets_have_distinct_truncated_ids() {
    let mut set = KeySet::new(0);
    let validity = KeyValidity::new(0, 1000).unwrap();
    for _ in 0..24 {
        set.generate(validity).unwrap();
    }
    let mut truncated: Vec<u8> = set
        .entries()
        .iter()
        .map(|e| e.public.truncated_token_key_id())
        .collect();
    truncated.sort();
    truncated.dedup();
    assert_eq!(truncated.len(), 24);
    assert_eq!(set.state(&validity, 500), KeyState::Active);
}

#[test]
fn pkcs1_and_pkcs8_imports_agree() {
    let key = IssuerKey::generate().unwrap();
    let pkcs8 = key.to_pkcs8_pem().unwrap();
    let rsa = openssl::pkey::PKey::private_key_from_pem(&pkcs8)
        .unwrap()
        .rsa()
        .unwrap();
    let pkcs1 = rsa.private_key_to_pem().unwrap();
    assert!(pkcs1.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
    let again = IssuerKey::from_pem(&pkcs1).unwrap();
    assert_eq!(
        again.public_key().token_key_id(),
        key.public_key().token_key_id()
    );
    let wrong_e =
        openssl::rsa::Rsa::generate_with_e(2048, &openssl::bn::BigNum::from_u32(3).unwrap())
            .unwrap();
    assert_eq!(
        IssuerKey::from_pem(&wrong_e.private_key_to_pem().unwrap()).unwrap_err(),
        KeyError::WrongExponent
    );
}

/// A token seen before skips only the RSA operation: the key must still be known and valid,
/// the binding must hold, and the spent check still answers.
#[test]
fn tokens_seen_before_keep_every_check_but_the_signature() {
    let (keys, key) = setup(KeyValidity::new(NOW - 10, NOW + 10).unwrap(), 0);
    let redeemer = Redeemer::new(
        Verifier::new(keys.clone()),
        Arc::new(MemoryStore::default()),
    );
    let token = token_for(&keys, &key, &challenge(), NOW);
    let verified = verify_unspent_seen_before(&redeemer, &token, &[], NOW).unwrap();
    redeemer.record(&verified).unwrap();
    assert_eq!(
        verify_unspent_seen_before(&redeemer, &token, &[], NOW).unwrap_err(),
        RedeemError::AlreadySpent
    );
    let other = TokenChallenge::new(2, b"elsewhere", &[], b"")
        .unwrap()
        .encode();
    assert_eq!(
        verify_unspent_seen_before(&redeemer, &token, &[&other], NOW).unwrap_err(),
        RedeemError::Verify(VerifyError::ChallengeMismatch)
    );
    assert_eq!(
        verify_unspent_seen_before(&redeemer, &token, &[], NOW + 20).unwrap_err(),
        RedeemError::Verify(VerifyError::KeyNotValid)
    );
    assert!(matches!(
        verify_unspent_seen_before(&redeemer, &token[..10], &[], NOW),
        Err(RedeemError::Verify(VerifyError::Malformed(_)))
    ));
}
