//! The issuer: RFC 9578 §6 issuance for token type 0x0002, over the JSON-RPC form (a key id and
//! a blinded token) and the native form (a TokenRequest naming its key by truncated id).

use std::sync::Arc;

use crate::codes::ErrorCode;
use crate::keys::{IssuerKey, KeySet, TokenKeyId};
use crate::rsa_blind::{RsaError, MODULUS_LEN};
use crate::wire::{DecodeError, TokenRequest, TokenResponse, TokenType};

/// A type 2 TokenRequest: type, truncated key id, blinded message.
const REQUEST_LEN: usize = MODULUS_LEN + 3;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    #[error("no key with this id is active for issuance")]
    UnknownKey,
    #[error("no key with truncated id 0x{0:02x} is active for issuance")]
    UnknownTruncatedKey(u8),
    #[error("the blinded token must be {MODULUS_LEN} bytes or a {REQUEST_LEN} byte TokenRequest, got {0}")]
    WrongLength(usize),
    #[error("the TokenRequest has token type 0x{0:04x}; this key issues 0x0002")]
    WrongTokenType(u16),
    #[error(
        "the TokenRequest's truncated key id 0x{got:02x} does not match the key's 0x{expected:02x}"
    )]
    TruncatedIdMismatch { got: u8, expected: u8 },
    #[error("the blinded message is not below the key's modulus")]
    NotBelowModulus,
    #[error("malformed TokenRequest: {0}")]
    Malformed(DecodeError),
    #[error("the signature failed its self-check and was withheld")]
    SigningFault,
    #[error("signing failed")]
    Backend,
}

impl IssueError {
    pub fn code(&self) -> ErrorCode {
        match self {
            IssueError::UnknownKey => ErrorCode::UnknownIssuanceKey,
            IssueError::UnknownTruncatedKey(_)
            | IssueError::WrongLength(_)
            | IssueError::WrongTokenType(_)
            | IssueError::TruncatedIdMismatch { .. }
            | IssueError::NotBelowModulus
            | IssueError::Malformed(_) => ErrorCode::UnprocessableBlindedToken,
            IssueError::SigningFault | IssueError::Backend => ErrorCode::Internal,
        }
    }
}

impl From<RsaError> for IssueError {
    fn from(e: RsaError) -> Self {
        match e {
            RsaError::WrongLength(n) => IssueError::WrongLength(n),
            RsaError::NotBelowModulus => IssueError::NotBelowModulus,
            RsaError::FaultDetected => IssueError::SigningFault,
            _ => IssueError::Backend,
        }
    }
}

/// Signs token requests with the issuance keys of a key set.
#[derive(Clone, Debug)]
pub struct Issuer {
    keys: Arc<KeySet>,
}

impl Issuer {
    pub fn new(keys: Arc<KeySet>) -> Self {
        Issuer { keys }
    }

    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// The key with this id, if it issues at `now`.
    pub fn key(&self, key_id: &TokenKeyId, now: u64) -> Result<&Arc<IssuerKey>, IssueError> {
        self.keys
            .issuance_key(key_id, now)
            .ok_or(IssueError::UnknownKey)
    }

    /// JSON-RPC `issue`: `blinded_token` is either the bare blinded message or a whole
    /// TokenRequest whose type and truncated id must match the key. Returns the blind signature.
    pub fn issue(
        &self,
        key_id: &TokenKeyId,
        blinded_token: &[u8],
        now: u64,
    ) -> Result<Vec<u8>, IssueError> {
        let key = self.key(key_id, now)?;
        match blinded_token.len() {
            MODULUS_LEN => Ok(key.blind_sign(blinded_token)?),
            REQUEST_LEN => {
                let request = decode_type2_request(blinded_token)?;
                let expected = key.public_key().truncated_token_key_id();
                if request.truncated_token_key_id != expected {
                    return Err(IssueError::TruncatedIdMismatch {
                        got: request.truncated_token_key_id,
                        expected,
                    });
                }
                Ok(key.blind_sign(&request.blinded_msg)?)
            }
            n => Err(IssueError::WrongLength(n)),
        }
    }

    /// RFC 9578 native issuance: an encoded TokenRequest in, a TokenResponse out.
    pub fn issue_request(&self, request: &[u8], now: u64) -> Result<TokenResponse, IssueError> {
        let request = decode_type2_request(request)?;
        let key = self
            .keys
            .issuance_key_by_truncated(request.truncated_token_key_id, now)
            .ok_or(IssueError::UnknownTruncatedKey(
                request.truncated_token_key_id,
            ))?;
        Ok(TokenResponse {
            blind_sig: key.blind_sign(&request.blinded_msg)?,
        })
    }
}

/// An encoded TokenRequest this issuer can answer: well formed and of token type 0x0002.
fn decode_type2_request(encoded: &[u8]) -> Result<TokenRequest, IssueError> {
    // The type first: a request of another type is that, whatever its length.
    match TokenRequest::encoded_token_type(encoded) {
        Some(t) if t != TokenType::BlindRsa2048.value() => {
            return Err(IssueError::WrongTokenType(t))
        }
        _ => {}
    }
    let request = TokenRequest::decode(encoded).map_err(|e| match e {
        DecodeError::UnsupportedTokenType(t) => IssueError::WrongTokenType(t),
        other => IssueError::Malformed(other),
    })?;
    if request.token_type != TokenType::BlindRsa2048 {
        return Err(IssueError::WrongTokenType(request.token_type.value()));
    }
    Ok(request)
}
