//! The verifier: checks a Token against a key set and, optionally, the challenges it must be
//! bound to. It does not record spends; `Redeemer` does.

use std::sync::Arc;

use subtle::{Choice, ConstantTimeEq};

use crate::codes::ErrorCode;
use crate::keys::{KeySet, KeyValidity};
use crate::rsa_blind::RsaError;
use crate::wire::{digest_of_encoded, DecodeError, Token, TokenType};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("unsupported token type 0x{0:04x}")]
    UnsupportedTokenType(u16),
    #[error("malformed token: {0}")]
    Malformed(DecodeError),
    #[error("unknown token key")]
    UnknownKey,
    #[error("the token key is not valid now")]
    KeyNotValid,
    #[error("the token is not bound to an expected challenge")]
    ChallengeMismatch,
    #[error("the authenticator is not below the modulus")]
    AuthenticatorNotBelowModulus,
    #[error("bad authenticator")]
    BadAuthenticator,
}

impl VerifyError {
    /// A type this verifier does not serve is -32022; bytes that are not a token of a type it
    /// serves (truncated, too long, trailing bytes) are invalid params, -32602; a well-formed
    /// token that does not verify is -32020.
    pub fn code(&self) -> ErrorCode {
        match self {
            VerifyError::UnsupportedTokenType(_) => ErrorCode::UnsupportedToken,
            VerifyError::Malformed(_) => ErrorCode::InvalidParams,
            _ => ErrorCode::VerificationFailed,
        }
    }
}

/// Decodes a token, with the errors of verification.
pub(crate) fn decode_token(token: &[u8]) -> Result<Token, VerifyError> {
    // The type is judged first: a token of a type this library does not know is -32022
    // whatever its length.
    if let [high, low, ..] = *token {
        let token_type = u16::from_be_bytes([high, low]);
        if TokenType::from_value(token_type).is_none() {
            return Err(VerifyError::UnsupportedTokenType(token_type));
        }
    }
    Token::decode(token).map_err(|e| match e {
        DecodeError::UnsupportedTokenType(t) => VerifyError::UnsupportedTokenType(t),
        other => VerifyError::Malformed(other),
    })
}

/// A token that verified (of any type), with the validity of the key it verified under.
#[derive(Clone, Debug)]
pub struct Verified {
    pub token: Token,
    pub validity: KeyValidity,
    /// Unix second after which the key's tokens are no longer accepted.
    pub redeemable_until: u64,
}

/// Verifies tokens of every type against the keys of a key set: type 2 with the public key of
/// its token_key_id, types 1 and 5 with the private key of theirs (a set of public keys only
/// answers `UnknownKey` for those). Cheap to clone and safe to share.
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: Arc<KeySet>,
}

impl Verifier {
    pub fn new(keys: Arc<KeySet>) -> Self {
        Verifier { keys }
    }

    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// Verifies an encoded token at `now`. When `expected_challenges` is not empty, the token's
    /// challenge_digest must equal SHA-256 of one of them (compared in constant time).
    pub fn verify(
        &self,
        token: &[u8],
        expected_challenges: &[&[u8]],
        now: u64,
    ) -> Result<Verified, VerifyError> {
        if let [high, low, ..] = *token {
            self.check_served(u16::from_be_bytes([high, low]))?;
        }
        self.verify_token_inner(decode_token(token)?, expected_challenges, now, false)
    }

    /// A token of a type this verifier serves no key of is -32022, whatever its length: a type
    /// this library does not know, or type 1 or 5 without a private key of that type. (Type 2
    /// is always served: a set without its key answers `UnknownKey`.)
    fn check_served(&self, token_type: u16) -> Result<(), VerifyError> {
        let served = match TokenType::from_value(token_type) {
            None => false,
            Some(TokenType::BlindRsa2048) => true,
            Some(voprf) => self
                .keys
                .voprf_entries()
                .iter()
                .any(|e| e.key.token_type() == voprf),
        };
        if !served {
            return Err(VerifyError::UnsupportedTokenType(token_type));
        }
        Ok(())
    }

    /// As `verify`, for a decoded token whose exact bytes (all of them, authenticator included)
    /// verified before: every check but the RSA operation or the PRF evaluation (key known and
    /// valid now, challenge
    /// binding). For callers that remember digests of the tokens they verified, so that a
    /// replayed token costs a hash instead of a signature verification.
    pub fn verify_token_seen_before(
        &self,
        token: Token,
        expected_challenges: &[&[u8]],
        now: u64,
    ) -> Result<Verified, VerifyError> {
        self.check_served(token.token_type.value())?;
        self.verify_token_inner(token, expected_challenges, now, true)
    }

    fn verify_token_inner(
        &self,
        token: Token,
        expected_challenges: &[&[u8]],
        now: u64,
        seen_before: bool,
    ) -> Result<Verified, VerifyError> {
        if token.token_type.is_privately_verifiable() {
            return crate::private_token::verify_private(
                &self.keys,
                token,
                expected_challenges,
                now,
                seen_before,
            );
        }
        let entry = self
            .keys
            .get(&token.token_key_id)
            .ok_or(VerifyError::UnknownKey)?;
        let redeemable_until = redeemable_at(&self.keys, &entry.validity, now)?;
        check_bound(expected_challenges, &token.challenge_digest)?;
        if !seen_before {
            entry
                .public
                .verify(&token.authenticator_input(), &token.authenticator)
                .map_err(|e| match e {
                    RsaError::NotBelowModulus => VerifyError::AuthenticatorNotBelowModulus,
                    _ => VerifyError::BadAuthenticator,
                })?;
        }
        Ok(Verified {
            token,
            validity: entry.validity,
            redeemable_until,
        })
    }
}
/// The end of a key's redemption window when `now` is inside it (every token type): from its
/// `not_before` until the set's redemption grace after its issuance ends.
pub(crate) fn redeemable_at(
    keys: &KeySet,
    validity: &KeyValidity,
    now: u64,
) -> Result<u64, VerifyError> {
    let redeemable_until = keys.redeemable_until(validity);
    if now < validity.not_before || now >= redeemable_until {
        return Err(VerifyError::KeyNotValid);
    }
    Ok(redeemable_until)
}

/// A token's `challenge_digest` names one of `expected_challenges` (in constant time), when
/// any are given (every token type).
pub(crate) fn check_bound(
    expected_challenges: &[&[u8]],
    challenge_digest: &[u8; 32],
) -> Result<(), VerifyError> {
    if expected_challenges.is_empty() {
        return Ok(());
    }
    let mut bound = Choice::from(0);
    for challenge in expected_challenges {
        bound |= digest_of_encoded(challenge).ct_eq(challenge_digest);
    }
    if !bool::from(bound) {
        return Err(VerifyError::ChallengeMismatch);
    }
    Ok(())
}
