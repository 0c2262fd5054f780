//! Privately verifiable tokens: RFC 9578 §5 issuance for token type 0x0001 (VOPRF P-384,
//! SHA-384) and the same protocol for token type 0x0005 (VOPRF ristretto255, SHA-512) of
//! draft-ietf-privacypass-batched-tokens. The issuer evaluates the blinded element and proves it
//! (DLEQ); the client checks the proof and unblinds; the token's authenticator is the PRF output
//! of its token_authenticator_input, so only the issuer's private key verifies it, and the
//! [`crate::Verifier`] does so (with the same key set as type 2) before the [`crate::Redeemer`]
//! spends the token once in the same store.
//!
//! Wire layouts (Ne, Ns, Nh of RFC 9497 §4):
//! - TokenRequest: `token_type u16 || truncated_token_key_id u8 || blinded_msg[Ne]`
//! - TokenResponse: `evaluate_msg[Ne] || evaluate_proof[Ns + Ns]`
//! - Token: `token_type u16 || nonce[32] || challenge_digest[32] || token_key_id[32] ||
//!   authenticator[Nh]`
//!
//! with Ne = 49, Ns = 48, Nh = 48 for 0x0001 and Ne = 32, Ns = 32, Nh = 64 for 0x0005.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::codes::ErrorCode;
use crate::crypto::{self, VoprfBlindState};
use crate::keys::{KeySet, TokenKeyId, VoprfIssuerKey, VoprfPublicKey};
use crate::verifier::{check_bound, redeemable_at, Verified, VerifyError};
use crate::wire::{
    authenticator_input, DecodeError, Token, TokenChallenge, TokenRequest, VoprfTokenResponse,
    NONCE_LEN,
};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoprfIssueError {
    #[error("no VOPRF key with this id is active for issuance")]
    UnknownKey,
    #[error("token type 0x{0:04x} is not a VOPRF type this issuer serves")]
    WrongTokenType(u16),
    #[error(
        "the blinded element must be {element} bytes or a {request} byte TokenRequest, got {got}"
    )]
    WrongLength {
        element: usize,
        request: usize,
        got: usize,
    },
    #[error(
        "the TokenRequest's truncated key id 0x{got:02x} does not match the key's 0x{expected:02x}"
    )]
    TruncatedIdMismatch { got: u8, expected: u8 },
    #[error("no key of this type with truncated id 0x{0:02x} is active for issuance")]
    UnknownTruncatedKey(u8),
    #[error("malformed TokenRequest: {0}")]
    Malformed(DecodeError),
    #[error("the blinded element is not an element of the group (or is the identity)")]
    InvalidElement,
    #[error("evaluation failed")]
    Backend,
    #[error("the batch holds more than {max} tokens")]
    TooManyTokens { max: usize },
    #[error("malformed batch: {0}")]
    MalformedBatch(crate::batch::BatchError),
    #[error("entry {index} of the batch: {error}")]
    Entry {
        index: usize,
        error: Box<VoprfIssueError>,
    },
}

impl VoprfIssueError {
    /// As for type 2: a request the issuer cannot serve is 422 / -32011, a failure of its own
    /// is internal.
    pub fn code(&self) -> ErrorCode {
        match self {
            VoprfIssueError::UnknownKey => ErrorCode::UnknownIssuanceKey,
            VoprfIssueError::Backend => ErrorCode::Internal,
            VoprfIssueError::TooManyTokens { .. } => ErrorCode::TooLarge,
            VoprfIssueError::Entry { error, .. } => error.code(),
            _ => ErrorCode::UnprocessableBlindedToken,
        }
    }
}

pub(crate) fn issue_error(e: crypto::Error) -> VoprfIssueError {
    match e {
        crypto::Error::NotAnElement => VoprfIssueError::InvalidElement,
        _ => VoprfIssueError::Backend,
    }
}

/// Evaluates VOPRF token requests with the VOPRF keys of a key set.
#[derive(Clone, Debug)]
pub struct VoprfIssuer {
    keys: Arc<KeySet>,
}

impl VoprfIssuer {
    pub fn new(keys: Arc<KeySet>) -> Self {
        VoprfIssuer { keys }
    }

    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// RFC 9578 §5.2: an encoded TokenRequest of type 0x0001 or 0x0005 in, the TokenResponse
    /// (evaluated element and a fresh DLEQ proof) out, from the key its truncated id names.
    pub fn issue_request(
        &self,
        request: &[u8],
        now: u64,
    ) -> Result<VoprfTokenResponse, VoprfIssueError> {
        let request = TokenRequest::decode(request).map_err(|e| match e {
            DecodeError::UnsupportedTokenType(t) => VoprfIssueError::WrongTokenType(t),
            other => VoprfIssueError::Malformed(other),
        })?;
        if !request.token_type.is_privately_verifiable() {
            return Err(VoprfIssueError::WrongTokenType(request.token_type.value()));
        }
        let key = self
            .keys
            .voprf_issuance_key_by_truncated(
                request.token_type,
                request.truncated_token_key_id,
                now,
            )
            .ok_or(VoprfIssueError::UnknownTruncatedKey(
                request.truncated_token_key_id,
            ))?;
        issue_with(key, &request.blinded_msg)
    }

    /// JSON-RPC `issue`: evaluation by the key named by its full id, of either the bare
    /// blinded element (Ne bytes) or a whole TokenRequest whose type and truncated id must match
    /// the key.
    pub fn issue(
        &self,
        key_id: &TokenKeyId,
        blinded_token: &[u8],
        now: u64,
    ) -> Result<VoprfTokenResponse, VoprfIssueError> {
        let key = self.key(key_id, now)?;
        issue_with(key, blinded_element(key, blinded_token)?)
    }

    /// The key `key_id` names, when it issues at `now`.
    pub fn key(&self, key_id: &TokenKeyId, now: u64) -> Result<&VoprfIssuerKey, VoprfIssueError> {
        self.keys
            .voprf_get(key_id)
            .filter(|e| e.validity.issues_at(now))
            .map(|e| &*e.key)
            .ok_or(VoprfIssueError::UnknownKey)
    }
}

/// The blinded element of `blinded_token` for `key`: the bare element (Ne bytes) or a whole
/// TokenRequest whose type and truncated id match the key.
pub(crate) fn blinded_element<'a>(
    key: &VoprfIssuerKey,
    blinded_token: &'a [u8],
) -> Result<&'a [u8], VoprfIssueError> {
    let token_type = key.token_type();
    let element = token_type
        .voprf_suite()
        .map(|s| s.element_len())
        .ok_or(VoprfIssueError::WrongTokenType(token_type.value()))?;
    match blinded_token.len() {
        n if n == element => Ok(blinded_token),
        n if n == element + 3 => {
            let got = u16::from_be_bytes([blinded_token[0], blinded_token[1]]);
            if got != token_type.value() {
                return Err(VoprfIssueError::WrongTokenType(got));
            }
            let expected = key.public_key().truncated_token_key_id();
            if blinded_token[2] != expected {
                return Err(VoprfIssueError::TruncatedIdMismatch {
                    got: blinded_token[2],
                    expected,
                });
            }
            Ok(&blinded_token[3..])
        }
        got => Err(VoprfIssueError::WrongLength {
            element,
            request: element + 3,
            got,
        }),
    }
}

/// BlindEvaluate with `key`: the TokenResponse.
pub fn issue_with(
    key: &VoprfIssuerKey,
    blinded_element: &[u8],
) -> Result<VoprfTokenResponse, VoprfIssueError> {
    let (evaluate_msg, evaluate_proof) =
        key.blind_evaluate(blinded_element).map_err(issue_error)?;
    Ok(VoprfTokenResponse {
        evaluate_msg,
        evaluate_proof,
    })
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoprfClientError {
    #[error("the challenge asks for token type 0x{0:04x}; this key makes 0x{1:04x}")]
    WrongTokenType(u16, u16),
    #[error("blinding failed (the random number generator, or a given blind that is not a nonzero scalar)")]
    Blinding,
    #[error("malformed TokenResponse: {0}")]
    Response(DecodeError),
    #[error("the issuer's proof does not verify: the response is not from this key")]
    InvalidProof,
    #[error("the issuer's response does not finalize into a token")]
    InvalidResponse,
}

/// Makes VOPRF token requests and finalizes tokens against one issuer public key.
#[derive(Clone, Debug)]
pub struct VoprfClient {
    key: Arc<VoprfPublicKey>,
}

/// A VOPRF request on its way to the issuer, with what finalizing needs (the blind is wiped
/// when this is dropped).
#[derive(Debug)]
pub struct PendingVoprfToken {
    key: Arc<VoprfPublicKey>,
    request: TokenRequest,
    input: [u8; crate::wire::AUTHENTICATOR_INPUT_LEN],
    nonce: [u8; NONCE_LEN],
    challenge_digest: [u8; 32],
    state: VoprfBlindState,
}

impl VoprfClient {
    pub fn new(key: Arc<VoprfPublicKey>) -> Self {
        VoprfClient { key }
    }

    /// A TokenRequest for `challenge`, with a fresh nonce and blind from the OS RNG.
    pub fn request(
        &self,
        challenge: &TokenChallenge,
    ) -> Result<PendingVoprfToken, VoprfClientError> {
        let mut nonce = [0u8; NONCE_LEN];
        crypto::random_bytes(&mut nonce).map_err(|_| VoprfClientError::Blinding)?;
        self.request_inner(challenge, &nonce, None)
    }

    /// A TokenRequest from an explicit nonce and blind (SerializeScalar bytes, Ns of them), for
    /// known-answer tests; use `request` otherwise.
    pub fn request_with(
        &self,
        challenge: &TokenChallenge,
        nonce: &[u8; NONCE_LEN],
        blind: &[u8],
    ) -> Result<PendingVoprfToken, VoprfClientError> {
        self.request_inner(challenge, nonce, Some(blind))
    }

    fn request_inner(
        &self,
        challenge: &TokenChallenge,
        nonce: &[u8; NONCE_LEN],
        blind: Option<&[u8]>,
    ) -> Result<PendingVoprfToken, VoprfClientError> {
        let token_type = self.key.token_type();
        if challenge.token_type != token_type.value() {
            return Err(VoprfClientError::WrongTokenType(
                challenge.token_type,
                token_type.value(),
            ));
        }
        let suite = token_type
            .voprf_suite()
            .ok_or(VoprfClientError::WrongTokenType(
                challenge.token_type,
                token_type.value(),
            ))?;
        let challenge_digest = challenge.digest();
        let input = authenticator_input(
            token_type.value(),
            nonce,
            &challenge_digest,
            self.key.token_key_id(),
        );
        let (state, blinded_msg) =
            VoprfBlindState::blind(suite, &input, blind).map_err(|_| VoprfClientError::Blinding)?;
        Ok(PendingVoprfToken {
            key: self.key.clone(),
            request: TokenRequest {
                token_type,
                truncated_token_key_id: self.key.truncated_token_key_id(),
                blinded_msg,
            },
            input,
            nonce: *nonce,
            challenge_digest,
            state,
        })
    }
}

impl PendingVoprfToken {
    pub fn request(&self) -> &TokenRequest {
        &self.request
    }

    /// RFC 9578 §5.3: the Token for the issuer's encoded TokenResponse. The DLEQ proof is
    /// verified against the issuer key before anything is unblinded, so a token is only
    /// returned when it verifies under that key.
    pub fn finalize(&self, response: &[u8]) -> Result<Token, VoprfClientError> {
        let token_type = self.key.token_type();
        let response =
            VoprfTokenResponse::decode(token_type, response).map_err(VoprfClientError::Response)?;
        let authenticator = self
            .state
            .finalize(
                &self.input,
                &response.evaluate_msg,
                &response.evaluate_proof,
                self.key.bytes(),
            )
            .map_err(|e| match e {
                crypto::Error::ProofInvalid => VoprfClientError::InvalidProof,
                _ => VoprfClientError::InvalidResponse,
            })?;
        Ok(self.token_with(authenticator))
    }

    /// The Token this request makes with `authenticator` (its PRF output).
    pub(crate) fn token_with(&self, authenticator: Vec<u8>) -> Token {
        Token {
            token_type: self.key.token_type(),
            nonce: self.nonce,
            challenge_digest: self.challenge_digest,
            token_key_id: *self.key.token_key_id(),
            authenticator,
        }
    }

    pub(crate) fn state(&self) -> &VoprfBlindState {
        &self.state
    }

    /// token_authenticator_input: what was blinded.
    pub(crate) fn input(&self) -> &[u8] {
        &self.input
    }

    pub(crate) fn key(&self) -> &Arc<VoprfPublicKey> {
        &self.key
    }
}

/// Verifies a decoded VOPRF token at `now` with the private key of its token_key_id (the
/// private half of [`crate::Verifier::verify`]): the key must be known, of the token's type and
/// valid, the token bound to one of `expected_challenges` when any are given, and its
/// authenticator equal (in constant time) to the PRF output the key computes for its
/// token_authenticator_input. `seen_before` (the exact bytes verified before) skips only that
/// evaluation. Records nothing.
pub(crate) fn verify_private(
    keys: &KeySet,
    token: Token,
    expected_challenges: &[&[u8]],
    now: u64,
    seen_before: bool,
) -> Result<Verified, VerifyError> {
    let entry = keys
        .voprf_get(&token.token_key_id)
        .filter(|e| e.key.token_type() == token.token_type)
        .ok_or(VerifyError::UnknownKey)?;
    let redeemable_until = redeemable_at(keys, &entry.validity, now)?;
    check_bound(expected_challenges, &token.challenge_digest)?;
    if !seen_before {
        let expected = entry
            .key
            .evaluate(&token.authenticator_input())
            .map_err(|_| VerifyError::BadAuthenticator)?;
        // Both are Nh bytes (the decoder checked the token's length), so ct_eq compares all.
        if !bool::from(expected.as_slice().ct_eq(&token.authenticator)) {
            return Err(VerifyError::BadAuthenticator);
        }
    }
    Ok(Verified {
        token,
        validity: entry.validity,
        redeemable_until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyValidity;
    use crate::redeem::{RedeemError, Redeemer};
    use crate::store::MemoryStore;
    use crate::verifier::Verifier;
    use crate::wire::TokenType;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn issue_finalize_redeem_once_for_both_types() {
        for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
            let mut set = KeySet::new(0);
            let key = set
                .generate_voprf(token_type, KeyValidity::new(0, u64::MAX).unwrap())
                .unwrap();
            let keys = Arc::new(set);
            let challenge =
                TokenChallenge::new(token_type.value(), b"issuer.example", &[], b"").unwrap();
            let pending = VoprfClient::new(key.public_key().clone())
                .request(&challenge)
                .unwrap();
            let response = VoprfIssuer::new(keys.clone())
                .issue_request(&pending.request().encode(), NOW)
                .unwrap();
            let token = pending.finalize(&response.encode()).unwrap().encode();
            let redeemer = Redeemer::new(Verifier::new(keys), Arc::new(MemoryStore::new(1000)));
            let encoded = challenge.encode();
            redeemer.redeem(&token, &[&encoded], NOW).unwrap();
            assert_eq!(
                redeemer.redeem(&token, &[&encoded], NOW).unwrap_err(),
                RedeemError::AlreadySpent
            );
            assert!(!format!("{key:?}").contains(&hex::encode(key.scalar_bytes())));

            // The JSON-RPC form: a bare element or a whole request, checked against the key.
            let issuer = VoprfIssuer::new(redeemer.verifier().keys().clone());
            let id = key.public_key().token_key_id();
            let request = pending.request().encode();
            assert!(issuer.issue(id, &request, NOW).is_ok());
            assert!(issuer.issue(id, &request[3..], NOW).is_ok());
            let mut wrong = request.clone();
            wrong[2] ^= 1;
            assert!(matches!(
                issuer.issue(id, &wrong, NOW),
                Err(VoprfIssueError::TruncatedIdMismatch { .. })
            ));
            assert!(matches!(
                issuer.issue(id, &request[1..], NOW),
                Err(VoprfIssueError::WrongLength { .. })
            ));
            assert_eq!(
                issuer.issue(&[0; 32], &request, NOW).unwrap_err().code(),
                ErrorCode::UnknownIssuanceKey
            );
            // An unspent token reads unspent, then spent after record.
            let fresh = VoprfClient::new(key.public_key().clone())
                .request(&challenge)
                .unwrap();
            let response = issuer
                .issue_request(&fresh.request().encode(), NOW)
                .unwrap();
            let token = fresh.finalize(&response.encode()).unwrap().encode();
            let verified = redeemer.verify(&token, &[], NOW).unwrap();
            let verified = redeemer.check_not_spent(verified).unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            redeemer.record_with(&verified, Box::new(move |r| tx.send(r).unwrap()));
            assert_eq!(rx.recv().unwrap(), Ok(()));
            assert_eq!(
                redeemer.check_not_spent(verified).unwrap_err(),
                RedeemError::AlreadySpent
            );
        }
    }

    /// The seen-token path (bytes that verified before): every check but the PRF evaluation.
    #[test]
    fn a_token_seen_before_keeps_every_check_but_the_evaluation() {
        for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
            let mut set = KeySet::new(0);
            let key = set
                .generate_voprf(token_type, KeyValidity::new(0, NOW + 10).unwrap())
                .unwrap();
            let keys = Arc::new(set);
            let challenge =
                TokenChallenge::new(token_type.value(), b"issuer.example", &[], b"").unwrap();
            let pending = VoprfClient::new(key.public_key().clone())
                .request(&challenge)
                .unwrap();
            let response = VoprfIssuer::new(keys.clone())
                .issue_request(&pending.request().encode(), NOW)
                .unwrap();
            let token = pending.finalize(&response.encode()).unwrap();
            let verifier = Verifier::new(keys.clone());
            let mut forged = token.clone();
            forged.authenticator[0] ^= 1;
            assert_eq!(
                verifier.verify(&forged.encode(), &[], NOW).unwrap_err(),
                VerifyError::BadAuthenticator
            );
            // Seen before: the evaluation is skipped, so only the caller's memory of the bytes
            // stands for it; the key, its window and the binding are checked again.
            assert!(verifier
                .verify_token_seen_before(forged.clone(), &[], NOW)
                .is_ok());
            let other = TokenChallenge::new(token_type.value(), b"other.example", &[], b"")
                .unwrap()
                .encode();
            assert_eq!(
                verifier
                    .verify_token_seen_before(token.clone(), &[&other], NOW)
                    .unwrap_err(),
                VerifyError::ChallengeMismatch
            );
            let late = NOW + 10 + keys.redemption_grace() + 1;
            assert_eq!(
                verifier
                    .verify_token_seen_before(token.clone(), &[], late)
                    .unwrap_err(),
                VerifyError::KeyNotValid
            );
            let mut unknown = token.clone();
            unknown.token_key_id[0] ^= 1;
            assert_eq!(
                verifier
                    .verify_token_seen_before(unknown, &[], NOW)
                    .unwrap_err(),
                VerifyError::UnknownKey
            );
            // A verifier without a key of the type: -32022, seen or not.
            let rsa_only = Verifier::new(Arc::new(KeySet::new(0)));
            assert_eq!(
                rsa_only
                    .verify_token_seen_before(token, &[], NOW)
                    .unwrap_err(),
                VerifyError::UnsupportedTokenType(token_type.value())
            );
        }
    }
}
