//! The client side of RFC 9578 issuance for token type 0x0002: a TokenRequest for a challenge
//! and an issuer key, then the Token from the issuer's TokenResponse, verified before it is
//! returned.

use std::sync::Arc;

use crate::keys::PublicKey;
use crate::rsa_blind::{self, RsaError, Unblinder, MODULUS_LEN, SALT_LEN};
use crate::wire::{
    authenticator_input, DecodeError, Token, TokenChallenge, TokenRequest, TokenResponse,
    TokenType, NONCE_LEN,
};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("the challenge asks for token type 0x{0:04x}; this client makes 0x0002")]
    UnsupportedTokenType(u16),
    #[error("the operating system's random number generator failed")]
    Rng,
    #[error("blinding failed: {0}")]
    Blinding(RsaError),
    #[error("malformed TokenResponse: {0}")]
    Response(DecodeError),
    #[error("the issuer's response does not finalize into a valid token")]
    InvalidSignature,
}

/// Makes token requests and finalizes tokens against one issuer key.
#[derive(Clone, Debug)]
pub struct Client {
    key: Arc<PublicKey>,
}

/// A request on its way to the issuer, with what finalizing needs.
#[derive(Debug)]
pub struct PendingToken {
    key: Arc<PublicKey>,
    request: TokenRequest,
    nonce: [u8; NONCE_LEN],
    challenge_digest: [u8; 32],
    unblinder: Unblinder,
}

fn random<const N: usize>() -> Result<[u8; N], ClientError> {
    let mut out = [0u8; N];
    crate::crypto::random_bytes(&mut out).map_err(|_| ClientError::Rng)?;
    Ok(out)
}

impl Client {
    pub fn new(key: Arc<PublicKey>) -> Self {
        Client { key }
    }

    /// A TokenRequest for `challenge`, with a fresh nonce, salt and blind from the OS RNG.
    pub fn request(&self, challenge: &TokenChallenge) -> Result<PendingToken, ClientError> {
        // r is drawn 64 bits longer than n and reduced, so its bias is negligible.
        let r: [u8; MODULUS_LEN + 8] = random()?;
        self.request_with(challenge, &random()?, &random()?, &r)
    }

    /// A TokenRequest from an explicit nonce, PSS salt and blinding factor r (for known-answer
    /// tests; use `request` otherwise).
    pub fn request_with(
        &self,
        challenge: &TokenChallenge,
        nonce: &[u8; NONCE_LEN],
        salt: &[u8; SALT_LEN],
        r: &[u8],
    ) -> Result<PendingToken, ClientError> {
        if challenge.token_type != TokenType::BlindRsa2048.value() {
            return Err(ClientError::UnsupportedTokenType(challenge.token_type));
        }
        let challenge_digest = challenge.digest();
        let input = authenticator_input(
            challenge.token_type,
            nonce,
            &challenge_digest,
            self.key.token_key_id(),
        );
        let (blinded_msg, unblinder) =
            rsa_blind::blind(self.key.modulus(), self.key.exponent(), &input, salt, r)
                .map_err(ClientError::Blinding)?;
        Ok(PendingToken {
            key: self.key.clone(),
            request: TokenRequest {
                token_type: TokenType::BlindRsa2048,
                truncated_token_key_id: self.key.truncated_token_key_id(),
                blinded_msg,
            },
            nonce: *nonce,
            challenge_digest,
            unblinder,
        })
    }
}

impl PendingToken {
    pub fn request(&self) -> &TokenRequest {
        &self.request
    }

    /// The Token for the issuer's encoded TokenResponse, verified against the issuer key.
    pub fn finalize(&self, response: &[u8]) -> Result<Token, ClientError> {
        let response = TokenResponse::decode(TokenType::BlindRsa2048, response)
            .map_err(ClientError::Response)?;
        let authenticator =
            rsa_blind::unblind(self.key.modulus(), &response.blind_sig, &self.unblinder)
                .map_err(|_| ClientError::InvalidSignature)?;
        let token = Token {
            token_type: TokenType::BlindRsa2048,
            nonce: self.nonce,
            challenge_digest: self.challenge_digest,
            token_key_id: *self.key.token_key_id(),
            authenticator,
        };
        self.key
            .verify(&token.authenticator_input(), &token.authenticator)
            .map_err(|_| ClientError::InvalidSignature)?;
        Ok(token)
    }
}
