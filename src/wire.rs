//! RFC 9577 / RFC 9578 structures in their TLS presentation-language encoding: TokenChallenge,
//! TokenRequest, TokenResponse, Token and the token_authenticator_input that the authenticator
//! signs. Decoders are strict: short input, over-long input, trailing bytes and out-of-range
//! field lengths are distinct errors, and no input makes them panic.

pub use crate::crypto::VoprfSuite;

/// Length of a token nonce, a challenge digest and a token key id.
pub const NONCE_LEN: usize = 32;
pub const DIGEST_LEN: usize = 32;
pub const KEY_ID_LEN: usize = 32;
/// The redemption context is either absent or exactly this long.
pub const REDEMPTION_CONTEXT_LEN: usize = 32;

/// Token types this library knows the sizes of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// 0x0001: VOPRF (P-384, SHA-384).
    VoprfP384,
    /// 0x0002: Blind RSA (2048-bit), RSABSSA-SHA384-PSS-Deterministic.
    BlindRsa2048,
    /// 0x0005: VOPRF (ristretto255, SHA-512), draft-ietf-privacypass-batched-tokens.
    VoprfRistretto255,
}

impl TokenType {
    pub const fn value(self) -> u16 {
        match self {
            TokenType::VoprfP384 => 0x0001,
            TokenType::BlindRsa2048 => 0x0002,
            TokenType::VoprfRistretto255 => 0x0005,
        }
    }

    pub fn from_value(value: u16) -> Option<TokenType> {
        match value {
            0x0001 => Some(TokenType::VoprfP384),
            0x0002 => Some(TokenType::BlindRsa2048),
            0x0005 => Some(TokenType::VoprfRistretto255),
            _ => None,
        }
    }

    /// Nk: the size of the authenticator, the blinded element and the evaluated element.
    pub const fn nk(self) -> usize {
        match self {
            TokenType::VoprfP384 => 48,
            TokenType::BlindRsa2048 => 256,
            TokenType::VoprfRistretto255 => 64,
        }
    }

    /// Size of a TokenRequest's blinded element.
    const fn request_element_len(self) -> usize {
        match self.voprf_suite() {
            Some(suite) => suite.element_len(),
            None => 256,
        }
    }

    /// The RFC 9497 ciphersuite of a privately verifiable (VOPRF) type; `None` for Blind RSA.
    pub const fn voprf_suite(self) -> Option<VoprfSuite> {
        match self {
            TokenType::VoprfP384 => Some(VoprfSuite::P384Sha384),
            TokenType::VoprfRistretto255 => Some(VoprfSuite::Ristretto255Sha512),
            TokenType::BlindRsa2048 => None,
        }
    }

    /// Whether only the issuer, with its private key, can verify the type's tokens.
    pub const fn is_privately_verifiable(self) -> bool {
        self.voprf_suite().is_some()
    }
}

/// Why bytes are not a well-formed structure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what} is truncated: {needed} bytes needed, {got} given")]
    Truncated {
        what: &'static str,
        needed: usize,
        got: usize,
    },
    #[error("{what} is too long: {expected} bytes expected, {got} given")]
    TooLong {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{what} is followed by {extra} trailing bytes")]
    TrailingBytes { what: &'static str, extra: usize },
    #[error("{field} has an invalid length of {len} bytes")]
    InvalidFieldLength { field: &'static str, len: usize },
    #[error("unsupported token type 0x{0:04x}")]
    UnsupportedTokenType(u16),
}

/// A cursor over input that never reads past its end.
struct Reader<'a> {
    what: &'static str,
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(what: &'static str, input: &'a [u8]) -> Self {
        Reader {
            what,
            input,
            pos: 0,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.input.len() - self.pos;
        if n > remaining {
            return Err(DecodeError::Truncated {
                what: self.what,
                needed: self.pos + n,
                got: self.input.len(),
            });
        }
        let out = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn finish(self) -> Result<(), DecodeError> {
        let extra = self.input.len() - self.pos;
        if extra == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                what: self.what,
                extra,
            })
        }
    }
}

/// Checks the total length of a fixed-size structure.
fn expect_len(what: &'static str, input: &[u8], expected: usize) -> Result<(), DecodeError> {
    match input.len() {
        n if n < expected => Err(DecodeError::Truncated {
            what,
            needed: expected,
            got: n,
        }),
        n if n > expected => Err(DecodeError::TooLong {
            what,
            expected,
            got: n,
        }),
        _ => Ok(()),
    }
}

fn supported_type(value: u16) -> Result<TokenType, DecodeError> {
    TokenType::from_value(value).ok_or(DecodeError::UnsupportedTokenType(value))
}

/// RFC 9577 §2.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenChallenge {
    pub token_type: u16,
    pub issuer_name: Vec<u8>,
    /// Empty or exactly 32 bytes.
    pub redemption_context: Vec<u8>,
    /// Origin names separated by commas; empty means any origin.
    pub origin_info: Vec<u8>,
}

impl TokenChallenge {
    /// A challenge, checking the field lengths the encoding can carry.
    pub fn new(
        token_type: u16,
        issuer_name: &[u8],
        redemption_context: &[u8],
        origin_info: &[u8],
    ) -> Result<Self, DecodeError> {
        let challenge = TokenChallenge {
            token_type,
            issuer_name: issuer_name.to_vec(),
            redemption_context: redemption_context.to_vec(),
            origin_info: origin_info.to_vec(),
        };
        challenge.check_fields()?;
        Ok(challenge)
    }

    fn check_fields(&self) -> Result<(), DecodeError> {
        if self.issuer_name.is_empty() || self.issuer_name.len() > usize::from(u16::MAX) {
            return Err(DecodeError::InvalidFieldLength {
                field: "issuer_name",
                len: self.issuer_name.len(),
            });
        }
        if !matches!(self.redemption_context.len(), 0 | REDEMPTION_CONTEXT_LEN) {
            return Err(DecodeError::InvalidFieldLength {
                field: "redemption_context",
                len: self.redemption_context.len(),
            });
        }
        if self.origin_info.len() > usize::from(u16::MAX) {
            return Err(DecodeError::InvalidFieldLength {
                field: "origin_info",
                len: self.origin_info.len(),
            });
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            7 + self.issuer_name.len() + self.redemption_context.len() + self.origin_info.len(),
        );
        out.extend_from_slice(&self.token_type.to_be_bytes());
        // Lengths are bounded by `check_fields` on every way in.
        out.extend_from_slice(&(self.issuer_name.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.issuer_name);
        out.push(self.redemption_context.len() as u8);
        out.extend_from_slice(&self.redemption_context);
        out.extend_from_slice(&(self.origin_info.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.origin_info);
        out
    }

    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new("TokenChallenge", input);
        let token_type = r.u16()?;
        let issuer_len = usize::from(r.u16()?);
        let issuer_name = r.take(issuer_len)?.to_vec();
        let context_len = usize::from(r.u8()?);
        let redemption_context = r.take(context_len)?.to_vec();
        let origin_len = usize::from(r.u16()?);
        let origin_info = r.take(origin_len)?.to_vec();
        r.finish()?;
        let challenge = TokenChallenge {
            token_type,
            issuer_name,
            redemption_context,
            origin_info,
        };
        challenge.check_fields()?;
        Ok(challenge)
    }

    /// challenge_digest = SHA-256(TokenChallenge).
    pub fn digest(&self) -> [u8; DIGEST_LEN] {
        digest_of_encoded(&self.encode())
    }

    /// The origin names of origin_info.
    pub fn origins(&self) -> Vec<String> {
        if self.origin_info.is_empty() {
            return Vec::new();
        }
        String::from_utf8_lossy(&self.origin_info)
            .split(',')
            .map(str::to_owned)
            .collect()
    }
}

/// SHA-256 of an encoded TokenChallenge.
pub fn digest_of_encoded(encoded_challenge: &[u8]) -> [u8; DIGEST_LEN] {
    crate::crypto::sha256(encoded_challenge)
}

/// RFC 9578 §5.1 / §6.1: the client's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub token_type: TokenType,
    pub truncated_token_key_id: u8,
    /// blinded_msg (type 2) or blinded_element (type 1).
    pub blinded_msg: Vec<u8>,
}

impl TokenRequest {
    /// The truncated_token_key_id of an encoded TokenRequest (its third byte, in every token
    /// type), read without decoding the rest: which key a request names, before it is checked.
    /// `None` when the bytes are too short to hold it.
    pub fn encoded_truncated_key_id(encoded: &[u8]) -> Option<u8> {
        encoded.get(2).copied()
    }

    /// The token_type of an encoded TokenRequest (its first two bytes), read without decoding
    /// the rest: which issuance protocol a request asks for. `None` when the bytes are too short.
    pub fn encoded_token_type(encoded: &[u8]) -> Option<u16> {
        Some(u16::from_be_bytes([*encoded.first()?, *encoded.get(1)?]))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.blinded_msg.len());
        out.extend_from_slice(&self.token_type.value().to_be_bytes());
        out.push(self.truncated_token_key_id);
        out.extend_from_slice(&self.blinded_msg);
        out
    }

    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new("TokenRequest", input);
        let token_type = supported_type(r.u16()?)?;
        expect_len("TokenRequest", input, 3 + token_type.request_element_len())?;
        let truncated_token_key_id = r.u8()?;
        let blinded_msg = r.take(token_type.request_element_len())?.to_vec();
        r.finish()?;
        Ok(TokenRequest {
            token_type,
            truncated_token_key_id,
            blinded_msg,
        })
    }
}

/// RFC 9578 §6.2: the issuer's response to a type 2 request (the blind signature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenResponse {
    pub blind_sig: Vec<u8>,
}

impl TokenResponse {
    pub fn encode(&self) -> Vec<u8> {
        self.blind_sig.clone()
    }

    pub fn decode(token_type: TokenType, input: &[u8]) -> Result<Self, DecodeError> {
        if token_type != TokenType::BlindRsa2048 {
            return Err(DecodeError::UnsupportedTokenType(token_type.value()));
        }
        expect_len("TokenResponse", input, token_type.nk())?;
        Ok(TokenResponse {
            blind_sig: input.to_vec(),
        })
    }
}

/// RFC 9578 §5.2 (and draft-ietf-privacypass-batched-tokens for type 0x0005): the issuer's
/// response to a VOPRF request, `evaluate_msg[Ne] || evaluate_proof[Ns + Ns]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoprfTokenResponse {
    pub evaluate_msg: Vec<u8>,
    pub evaluate_proof: Vec<u8>,
}

impl VoprfTokenResponse {
    pub fn encode(&self) -> Vec<u8> {
        [&self.evaluate_msg[..], &self.evaluate_proof[..]].concat()
    }

    /// Decodes the response to a request of `token_type`, which must be a VOPRF type.
    pub fn decode(token_type: TokenType, input: &[u8]) -> Result<Self, DecodeError> {
        let suite = token_type
            .voprf_suite()
            .ok_or(DecodeError::UnsupportedTokenType(token_type.value()))?;
        expect_len(
            "TokenResponse",
            input,
            suite.element_len() + suite.proof_len(),
        )?;
        let (msg, proof) = input.split_at(suite.element_len());
        Ok(VoprfTokenResponse {
            evaluate_msg: msg.to_vec(),
            evaluate_proof: proof.to_vec(),
        })
    }
}

/// RFC 9577 §2.2: the token a client presents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub token_type: TokenType,
    pub nonce: [u8; NONCE_LEN],
    pub challenge_digest: [u8; DIGEST_LEN],
    pub token_key_id: [u8; KEY_ID_LEN],
    pub authenticator: Vec<u8>,
}

/// Size of token_authenticator_input.
pub const AUTHENTICATOR_INPUT_LEN: usize = 2 + NONCE_LEN + DIGEST_LEN + KEY_ID_LEN;
/// Where challenge_digest and token_key_id start in a Token (in every token type).
const CHALLENGE_DIGEST_AT: usize = 2 + NONCE_LEN;
const TOKEN_KEY_ID_AT: usize = CHALLENGE_DIGEST_AT + DIGEST_LEN;

/// token_authenticator_input = token_type || nonce || challenge_digest || token_key_id.
pub fn authenticator_input(
    token_type: u16,
    nonce: &[u8; NONCE_LEN],
    challenge_digest: &[u8; DIGEST_LEN],
    token_key_id: &[u8; KEY_ID_LEN],
) -> [u8; AUTHENTICATOR_INPUT_LEN] {
    let mut out = [0u8; AUTHENTICATOR_INPUT_LEN];
    out[..2].copy_from_slice(&token_type.to_be_bytes());
    out[2..CHALLENGE_DIGEST_AT].copy_from_slice(nonce);
    out[CHALLENGE_DIGEST_AT..TOKEN_KEY_ID_AT].copy_from_slice(challenge_digest);
    out[TOKEN_KEY_ID_AT..].copy_from_slice(token_key_id);
    out
}

/// `N` bytes of `encoded` from `at`, when it holds them.
fn field_at<const N: usize>(encoded: &[u8], at: usize) -> Option<[u8; N]> {
    encoded.get(at..at + N)?.try_into().ok()
}

impl Token {
    /// The token_key_id of an encoded Token, read without decoding the rest: which key a token
    /// names, before it is verified. `None` when the bytes are too short to hold it.
    pub fn encoded_token_key_id(encoded: &[u8]) -> Option<[u8; KEY_ID_LEN]> {
        field_at(encoded, TOKEN_KEY_ID_AT)
    }

    /// The challenge_digest of an encoded Token, read as [`Token::encoded_token_key_id`] reads
    /// the key id.
    pub fn encoded_challenge_digest(encoded: &[u8]) -> Option<[u8; DIGEST_LEN]> {
        field_at(encoded, CHALLENGE_DIGEST_AT)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(AUTHENTICATOR_INPUT_LEN + self.authenticator.len());
        out.extend_from_slice(&self.authenticator_input());
        out.extend_from_slice(&self.authenticator);
        out
    }

    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Token", input);
        let token_type = supported_type(r.u16()?)?;
        expect_len("Token", input, AUTHENTICATOR_INPUT_LEN + token_type.nk())?;
        let nonce = r.array()?;
        let challenge_digest = r.array()?;
        let token_key_id = r.array()?;
        let authenticator = r.take(token_type.nk())?.to_vec();
        r.finish()?;
        Ok(Token {
            token_type,
            nonce,
            challenge_digest,
            token_key_id,
            authenticator,
        })
    }

    /// The bytes the authenticator signs.
    pub fn authenticator_input(&self) -> [u8; AUTHENTICATOR_INPUT_LEN] {
        authenticator_input(
            self.token_type.value(),
            &self.nonce,
            &self.challenge_digest,
            &self.token_key_id,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge() -> TokenChallenge {
        TokenChallenge::new(2, b"issuer.example", &[7u8; 32], b"a.example,b.example").unwrap()
    }

    #[test]
    fn challenge_round_trip_and_origins() {
        let c = challenge();
        assert_eq!(TokenChallenge::decode(&c.encode()).unwrap(), c);
        assert_eq!(c.origins(), vec!["a.example", "b.example"]);
    }

    #[test]
    fn challenge_errors_are_distinct() {
        let bytes = challenge().encode();
        assert!(matches!(
            TokenChallenge::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            TokenChallenge::decode(&long),
            Err(DecodeError::TrailingBytes {
                what: "TokenChallenge",
                extra: 1
            })
        );
        let bad_context = TokenChallenge {
            redemption_context: vec![1; 5],
            ..challenge()
        };
        assert_eq!(
            TokenChallenge::decode(&bad_context.encode()),
            Err(DecodeError::InvalidFieldLength {
                field: "redemption_context",
                len: 5
            })
        );
        assert!(TokenChallenge::new(2, b"", &[], b"").is_err());
    }

    #[test]
    fn token_errors_are_distinct() {
        let token = Token {
            token_type: TokenType::BlindRsa2048,
            nonce: [1; 32],
            challenge_digest: [2; 32],
            token_key_id: [3; 32],
            authenticator: vec![4; 256],
        };
        let bytes = token.encode();
        assert_eq!(Token::decode(&bytes).unwrap(), token);
        assert_eq!(Token::encoded_challenge_digest(&bytes), Some([2; 32]));
        assert_eq!(Token::encoded_token_key_id(&bytes), Some([3; 32]));
        assert_eq!(Token::encoded_token_key_id(&bytes[..97]), None);
        assert_eq!(Token::encoded_token_key_id(&bytes[..98]), Some([3; 32]));
        assert_eq!(Token::encoded_challenge_digest(&bytes[..65]), None);
        assert!(matches!(
            Token::decode(&bytes[..300]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            Token::decode(&long),
            Err(DecodeError::TooLong { .. })
        ));
        let mut other = bytes;
        other[1] = 0x07;
        assert_eq!(
            Token::decode(&other),
            Err(DecodeError::UnsupportedTokenType(7))
        );
        assert!(matches!(
            Token::decode(&[0]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn request_and_response_lengths() {
        let req = TokenRequest {
            token_type: TokenType::BlindRsa2048,
            truncated_token_key_id: 9,
            blinded_msg: vec![5; 256],
        };
        let bytes = req.encode();
        assert_eq!(bytes.len(), 259);
        assert_eq!(TokenRequest::encoded_truncated_key_id(&bytes), Some(9));
        assert_eq!(TokenRequest::encoded_truncated_key_id(&bytes[..2]), None);
        assert_eq!(TokenRequest::decode(&bytes).unwrap(), req);
        assert!(matches!(
            TokenRequest::decode(&bytes[..258]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            TokenRequest::decode(&[bytes.clone(), vec![0]].concat()),
            Err(DecodeError::TooLong { .. })
        ));
        assert!(TokenResponse::decode(TokenType::BlindRsa2048, &[0; 256]).is_ok());
        assert!(matches!(
            TokenResponse::decode(TokenType::BlindRsa2048, &[0; 255]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            TokenResponse::decode(TokenType::BlindRsa2048, &[0; 257]),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn voprf_lengths() {
        for (token_type, ne, proof, nk) in [
            (TokenType::VoprfP384, 49, 96, 48),
            (TokenType::VoprfRistretto255, 32, 64, 64),
        ] {
            assert!(token_type.is_privately_verifiable());
            assert_eq!(token_type.nk(), nk);
            let req = TokenRequest {
                token_type,
                truncated_token_key_id: 3,
                blinded_msg: vec![5; ne],
            };
            let bytes = req.encode();
            assert_eq!(bytes.len(), 3 + ne);
            assert_eq!(TokenRequest::decode(&bytes).unwrap(), req);
            assert!(TokenRequest::decode(&bytes[..bytes.len() - 1]).is_err());
            let response = vec![1; ne + proof];
            let decoded = VoprfTokenResponse::decode(token_type, &response).unwrap();
            assert_eq!(decoded.evaluate_msg.len(), ne);
            assert_eq!(decoded.encode(), response);
            assert!(VoprfTokenResponse::decode(token_type, &response[1..]).is_err());
            assert!(
                VoprfTokenResponse::decode(token_type, &[response.clone(), vec![0]].concat())
                    .is_err()
            );
            let token = Token {
                token_type,
                nonce: [1; 32],
                challenge_digest: [2; 32],
                token_key_id: [3; 32],
                authenticator: vec![4; nk],
            };
            assert_eq!(Token::decode(&token.encode()).unwrap(), token);
            assert!(TokenResponse::decode(token_type, &response).is_err());
        }
        assert!(!TokenType::BlindRsa2048.is_privately_verifiable());
        assert!(VoprfTokenResponse::decode(TokenType::BlindRsa2048, &[0; 145]).is_err());
    }
}
