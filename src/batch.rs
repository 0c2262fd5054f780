//! Batched issuance, draft-ietf-privacypass-batched-tokens (-07, the latest text read in full):
//!
//! - **Amortized batches** of the VOPRF types (0x0001, 0x0005): one key, `Nr` blinded elements,
//!   one DLEQ proof for all of them.
//!   `AmortizedBatchTokenRequest = token_type u16 || truncated_token_key_id u8 ||
//!   blinded_msgs<V>` (each Ne bytes) and
//!   `AmortizedBatchTokenResponse = evaluated_msgs<V> (each Ne bytes) || evaluated_proof[2·Ns]`.
//! - **Generic batches** of ordinary TokenRequests of any type and key:
//!   `GenericBatchTokenRequest = generic_token_requests<V>` (each a TokenRequest, which begins
//!   with its token_type) and `GenericBatchTokenResponse = optional_token_responses<V>`, each
//!   `present u8 (0 or 1) || [token_type u16 || TokenResponse]`: an absent response is an entry
//!   the issuer refused.
//!
//! `<V>` is a byte length in the variable-size integer encoding of RFC 9000 §16, which the draft
//! requires in its shortest form. Decoders are strict (a non-minimal length, a length beyond the
//! input, a list that is not a whole number of entries, trailing bytes and a presence octet other
//! than 0 or 1 are errors), bound the number of entries, and allocate nothing before the bytes an
//! entry needs are there.

use std::sync::Arc;

use crate::client::{ClientError, PendingToken};
use crate::crypto::VoprfBlindState;
use crate::issuer::Issuer;
use crate::keys::{KeySet, TokenKeyId, VoprfIssuerKey};
use crate::private_token::{
    blinded_element, issue_error, PendingVoprfToken, VoprfClient, VoprfClientError,
    VoprfIssueError, VoprfIssuer,
};
use crate::wire::{DecodeError, Token, TokenChallenge, TokenRequest, TokenType, NONCE_LEN};

/// `Content-Type` of an amortized batch request and of its response.
pub const AMORTIZED_REQUEST_MEDIA_TYPE: &str = "application/private-token-amortized-batch-request";
pub const AMORTIZED_RESPONSE_MEDIA_TYPE: &str =
    "application/private-token-amortized-batch-response";
/// `Content-Type` of a generic batch request and of its response.
pub const GENERIC_REQUEST_MEDIA_TYPE: &str = "application/private-token-generic-batch-request";
pub const GENERIC_RESPONSE_MEDIA_TYPE: &str = "application/private-token-generic-batch-response";

/// Why bytes are not a batch this library reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("{what} is truncated")]
    Truncated { what: &'static str },
    #[error("{what}: a length that is not in its shortest encoding")]
    NonMinimalLength { what: &'static str },
    #[error("{what} is followed by {extra} trailing bytes")]
    TrailingBytes { what: &'static str, extra: usize },
    #[error("{what}: {len} bytes are not a whole number of {entry}-byte entries")]
    PartialEntry {
        what: &'static str,
        len: usize,
        entry: usize,
    },
    #[error("the batch holds more than {max} tokens")]
    TooManyTokens { max: usize },
    #[error("the batch is empty")]
    Empty,
    #[error("token type 0x{0:04x} is not a type this library issues in this kind of batch")]
    UnsupportedTokenType(u16),
    #[error("entry {index}: {error}")]
    Entry { index: usize, error: DecodeError },
    #[error("entry {index}: presence octet {value}, not 0 or 1")]
    BadPresence { index: usize, value: u8 },
}

/// Appends `n` in the shortest variable-size integer encoding of RFC 9000 §16.
pub fn encode_varint(n: usize, out: &mut Vec<u8>) {
    let n = n as u64;
    match n {
        0..=0x3f => out.push(n as u8),
        0x40..=0x3fff => out.extend_from_slice(&(n as u16 | 0x4000).to_be_bytes()),
        0x4000..=0x3fff_ffff => out.extend_from_slice(&(n as u32 | 0x8000_0000).to_be_bytes()),
        _ => out.extend_from_slice(&(n | 0xc000_0000_0000_0000).to_be_bytes()),
    }
}

/// A cursor over a batch's bytes that never reads past their end.
struct Cursor<'a> {
    what: &'static str,
    input: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(what: &'static str, input: &'a [u8]) -> Self {
        Cursor { what, input }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BatchError> {
        if n > self.input.len() {
            return Err(BatchError::Truncated { what: self.what });
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, BatchError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, BatchError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A variable-size length in its shortest encoding.
    fn varint(&mut self) -> Result<usize, BatchError> {
        let first = self.u8()?;
        let len = 1usize << (first >> 6);
        let mut value = u64::from(first & 0x3f);
        for &b in self.take(len - 1)? {
            value = (value << 8) | u64::from(b);
        }
        let shortest = match value {
            0..=0x3f => 1,
            0x40..=0x3fff => 2,
            0x4000..=0x3fff_ffff => 4,
            _ => 8,
        };
        if len != shortest {
            return Err(BatchError::NonMinimalLength { what: self.what });
        }
        usize::try_from(value).map_err(|_| BatchError::Truncated { what: self.what })
    }

    /// The bytes of a `<V>` vector: its length, checked against what is there before anything
    /// is read or allocated.
    fn vector(&mut self) -> Result<&'a [u8], BatchError> {
        let len = self.varint()?;
        self.take(len)
    }

    fn finish(self) -> Result<(), BatchError> {
        match self.input.len() {
            0 => Ok(()),
            extra => Err(BatchError::TrailingBytes {
                what: self.what,
                extra,
            }),
        }
    }
}

/// Splits a `<V>` list of fixed-size entries, bounded to `max` of them.
fn fixed_entries<'a>(
    what: &'static str,
    list: &'a [u8],
    entry: usize,
    max: usize,
) -> Result<Vec<&'a [u8]>, BatchError> {
    if list.len() % entry != 0 {
        return Err(BatchError::PartialEntry {
            what,
            len: list.len(),
            entry,
        });
    }
    let count = list.len() / entry;
    if count > max {
        return Err(BatchError::TooManyTokens { max });
    }
    if count == 0 {
        return Err(BatchError::Empty);
    }
    Ok(list.chunks_exact(entry).collect())
}

fn voprf_type(value: u16) -> Result<TokenType, BatchError> {
    TokenType::from_value(value)
        .filter(|t| t.is_privately_verifiable())
        .ok_or(BatchError::UnsupportedTokenType(value))
}

fn element_len(token_type: TokenType) -> usize {
    token_type.voprf_suite().map_or(0, |s| s.element_len())
}

/// The batched request of the amortized kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmortizedBatchTokenRequest {
    pub token_type: TokenType,
    pub truncated_token_key_id: u8,
    /// The serialized blinded elements, Ne bytes each.
    pub blinded_msgs: Vec<Vec<u8>>,
}

impl AmortizedBatchTokenRequest {
    pub fn encode(&self) -> Vec<u8> {
        let list: Vec<u8> = self.blinded_msgs.concat();
        let mut out = Vec::with_capacity(3 + 8 + list.len());
        out.extend_from_slice(&self.token_type.value().to_be_bytes());
        out.push(self.truncated_token_key_id);
        encode_varint(list.len(), &mut out);
        out.extend_from_slice(&list);
        out
    }

    /// Decodes a request of at most `max_tokens` elements, of a VOPRF type.
    pub fn decode(input: &[u8], max_tokens: usize) -> Result<Self, BatchError> {
        const WHAT: &str = "AmortizedBatchTokenRequest";
        let mut c = Cursor::new(WHAT, input);
        let token_type = voprf_type(c.u16()?)?;
        let truncated_token_key_id = c.u8()?;
        let list = c.vector()?;
        c.finish()?;
        let blinded_msgs = fixed_entries(WHAT, list, element_len(token_type), max_tokens)?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        Ok(AmortizedBatchTokenRequest {
            token_type,
            truncated_token_key_id,
            blinded_msgs,
        })
    }
}

/// The issuer's answer to an amortized batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmortizedBatchTokenResponse {
    /// The evaluated elements, Ne bytes each, in the request's order.
    pub evaluated_msgs: Vec<Vec<u8>>,
    /// One DLEQ proof for the whole batch, 2·Ns bytes.
    pub evaluated_proof: Vec<u8>,
}

impl AmortizedBatchTokenResponse {
    pub fn encode(&self) -> Vec<u8> {
        let list: Vec<u8> = self.evaluated_msgs.concat();
        let mut out = Vec::with_capacity(8 + list.len() + self.evaluated_proof.len());
        encode_varint(list.len(), &mut out);
        out.extend_from_slice(&list);
        out.extend_from_slice(&self.evaluated_proof);
        out
    }

    /// Decodes the response to an amortized request of `token_type` and at most `max_tokens`
    /// elements.
    pub fn decode(
        token_type: TokenType,
        input: &[u8],
        max_tokens: usize,
    ) -> Result<Self, BatchError> {
        const WHAT: &str = "AmortizedBatchTokenResponse";
        let suite = token_type
            .voprf_suite()
            .ok_or(BatchError::UnsupportedTokenType(token_type.value()))?;
        let mut c = Cursor::new(WHAT, input);
        let list = c.vector()?;
        let proof = c.take(suite.proof_len())?;
        c.finish()?;
        let evaluated_msgs = fixed_entries(WHAT, list, suite.element_len(), max_tokens)?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        Ok(AmortizedBatchTokenResponse {
            evaluated_msgs,
            evaluated_proof: proof.to_vec(),
        })
    }
}

/// The length of a TokenResponse of a type this library issues: 256 for type 2 (the blind
/// signature), Ne + 2·Ns for a VOPRF type.
pub fn token_response_len(token_type: TokenType) -> usize {
    match token_type.voprf_suite() {
        Some(suite) => suite.element_len() + suite.proof_len(),
        None => token_type.nk(),
    }
}

/// The batched request of the generic kind: TokenRequests of any types and keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericBatchTokenRequest {
    pub token_requests: Vec<TokenRequest>,
}

impl GenericBatchTokenRequest {
    pub fn encode(&self) -> Vec<u8> {
        let list: Vec<u8> = self
            .token_requests
            .iter()
            .flat_map(TokenRequest::encode)
            .collect();
        let mut out = Vec::with_capacity(8 + list.len());
        encode_varint(list.len(), &mut out);
        out.extend_from_slice(&list);
        out
    }

    /// Decodes a request of at most `max_tokens` TokenRequests. An entry of a type this library
    /// does not know cannot be delimited, so it makes the whole batch malformed (the draft's
    /// 422); a known type's entry is read at its type's length.
    pub fn decode(input: &[u8], max_tokens: usize) -> Result<Self, BatchError> {
        const WHAT: &str = "GenericBatchTokenRequest";
        let mut c = Cursor::new(WHAT, input);
        let mut list = Cursor::new(WHAT, c.vector()?);
        c.finish()?;
        let mut token_requests = Vec::new();
        while !list.input.is_empty() {
            let index = token_requests.len();
            if index == max_tokens {
                return Err(BatchError::TooManyTokens { max: max_tokens });
            }
            let value = TokenRequest::encoded_token_type(list.input)
                .ok_or(BatchError::Truncated { what: WHAT })?;
            let token_type =
                TokenType::from_value(value).ok_or(BatchError::UnsupportedTokenType(value))?;
            let len = 3 + match token_type.voprf_suite() {
                Some(suite) => suite.element_len(),
                None => token_type.nk(),
            };
            let entry = list.take(len)?;
            let request =
                TokenRequest::decode(entry).map_err(|error| BatchError::Entry { index, error })?;
            token_requests.push(request);
        }
        if token_requests.is_empty() {
            return Err(BatchError::Empty);
        }
        Ok(GenericBatchTokenRequest { token_requests })
    }
}

/// One entry of a generic batch response: the TokenResponse bytes of a type, or none (refused).
pub type OptionalTokenResponse = Option<(TokenType, Vec<u8>)>;

/// The issuer's answer to a generic batch, one optional response per request, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericBatchTokenResponse {
    pub token_responses: Vec<OptionalTokenResponse>,
}

impl GenericBatchTokenResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut list = Vec::new();
        for entry in &self.token_responses {
            match entry {
                None => list.push(0),
                Some((token_type, response)) => {
                    list.push(1);
                    list.extend_from_slice(&token_type.value().to_be_bytes());
                    list.extend_from_slice(response);
                }
            }
        }
        let mut out = Vec::with_capacity(8 + list.len());
        encode_varint(list.len(), &mut out);
        out.extend_from_slice(&list);
        out
    }

    /// Decodes a response of at most `max_tokens` entries; each present one is read at its
    /// type's TokenResponse length.
    pub fn decode(input: &[u8], max_tokens: usize) -> Result<Self, BatchError> {
        const WHAT: &str = "GenericBatchTokenResponse";
        let mut c = Cursor::new(WHAT, input);
        let mut list = Cursor::new(WHAT, c.vector()?);
        c.finish()?;
        let mut token_responses = Vec::new();
        while !list.input.is_empty() {
            let index = token_responses.len();
            if index == max_tokens {
                return Err(BatchError::TooManyTokens { max: max_tokens });
            }
            token_responses.push(match list.u8()? {
                0 => None,
                1 => {
                    let value = list.u16()?;
                    let token_type = TokenType::from_value(value)
                        .ok_or(BatchError::UnsupportedTokenType(value))?;
                    Some((
                        token_type,
                        list.take(token_response_len(token_type))?.to_vec(),
                    ))
                }
                value => return Err(BatchError::BadPresence { index, value }),
            });
        }
        if token_responses.is_empty() {
            return Err(BatchError::Empty);
        }
        Ok(GenericBatchTokenResponse { token_responses })
    }
}

impl VoprfIssuer {
    /// An amortized batch: every blinded element evaluated with the key the request's type and
    /// truncated id name, one DLEQ proof for all of them (BlindEvaluateBatch). A batch over
    /// `max_tokens` is refused before any evaluation.
    pub fn issue_amortized(
        &self,
        request: &[u8],
        now: u64,
        max_tokens: usize,
    ) -> Result<AmortizedBatchTokenResponse, VoprfIssueError> {
        let request =
            AmortizedBatchTokenRequest::decode(request, max_tokens).map_err(|e| match e {
                BatchError::UnsupportedTokenType(t) => VoprfIssueError::WrongTokenType(t),
                BatchError::TooManyTokens { max } => VoprfIssueError::TooManyTokens { max },
                other => VoprfIssueError::MalformedBatch(other),
            })?;
        let key = self
            .keys()
            .voprf_issuance_key_by_truncated(
                request.token_type,
                request.truncated_token_key_id,
                now,
            )
            .ok_or(VoprfIssueError::UnknownTruncatedKey(
                request.truncated_token_key_id,
            ))?;
        let blinded: Vec<&[u8]> = request.blinded_msgs.iter().map(Vec::as_slice).collect();
        evaluate_batch(key, &blinded)
    }

    /// A one-key batch named by the key's full id (JSON-RPC `issue` with `blinded-tokens`):
    /// each entry the bare blinded element or a whole TokenRequest for the key, as a single
    /// `issue` takes it, evaluated with one DLEQ proof for all. A batch over `max_tokens`, an
    /// empty one or one with a wrong entry (the error names it) is refused before any
    /// evaluation.
    pub fn issue_amortized_by_id(
        &self,
        key_id: &TokenKeyId,
        blinded_tokens: &[&[u8]],
        now: u64,
        max_tokens: usize,
    ) -> Result<AmortizedBatchTokenResponse, VoprfIssueError> {
        if blinded_tokens.len() > max_tokens {
            return Err(VoprfIssueError::TooManyTokens { max: max_tokens });
        }
        if blinded_tokens.is_empty() {
            return Err(VoprfIssueError::MalformedBatch(BatchError::Empty));
        }
        let key = self.key(key_id, now)?;
        let blinded = blinded_tokens
            .iter()
            .enumerate()
            .map(|(index, token)| {
                blinded_element(key, token).map_err(|error| VoprfIssueError::Entry {
                    index,
                    error: Box::new(error),
                })
            })
            .collect::<Result<Vec<&[u8]>, _>>()?;
        evaluate_batch(key, &blinded)
    }
}

/// BlindEvaluateBatch with `key`: the evaluated elements and the one proof.
fn evaluate_batch(
    key: &VoprfIssuerKey,
    blinded: &[&[u8]],
) -> Result<AmortizedBatchTokenResponse, VoprfIssueError> {
    let (evaluated_msgs, evaluated_proof) =
        key.blind_evaluate_batch(blinded).map_err(issue_error)?;
    Ok(AmortizedBatchTokenResponse {
        evaluated_msgs,
        evaluated_proof,
    })
}

/// `f` of each item, in order, on up to `threads` scoped threads (each a run of consecutive
/// items); blocks until all are done. An item whose thread panicked (a bug) is `None`.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(|item| Some(f(item))).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|chunk| {
                let len = chunk.len();
                (
                    len,
                    scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>()),
                )
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(len, h)| match h.join() {
                Ok(done) => done.into_iter().map(Some).collect::<Vec<_>>(),
                Err(_) => (0..len).map(|_| None).collect(),
            })
            .collect()
    })
}

/// Issues each TokenRequest of a generic batch with the keys of `keys` (type 2 with the RSA key
/// its truncated id names, types 1 and 5 with their VOPRF key), on up to `threads` threads:
/// one optional response per request, `None` for each request refused (unknown key, bad
/// blinded element), in order. Blocks until all are issued.
pub fn issue_generic(
    keys: &Arc<KeySet>,
    request: &GenericBatchTokenRequest,
    now: u64,
    threads: usize,
) -> GenericBatchTokenResponse {
    let rsa = Issuer::new(keys.clone());
    let voprf = VoprfIssuer::new(keys.clone());
    let issue_one = |request: &TokenRequest| -> OptionalTokenResponse {
        let encoded = request.encode();
        let response = if request.token_type.is_privately_verifiable() {
            voprf.issue_request(&encoded, now).ok()?.encode()
        } else {
            rsa.issue_request(&encoded, now).ok()?.encode()
        };
        Some((request.token_type, response))
    };
    let token_responses = parallel_map(&request.token_requests, threads, issue_one)
        .into_iter()
        // A panic in one thread (a bug) refuses its entries, as a failure would.
        .map(Option::flatten)
        .collect();
    GenericBatchTokenResponse { token_responses }
}

impl VoprfClient {
    /// An amortized batch of `count` requests for `challenge`, each with a fresh nonce and
    /// blind.
    pub fn request_amortized(
        &self,
        challenge: &TokenChallenge,
        count: usize,
    ) -> Result<PendingAmortizedBatch, VoprfClientError> {
        let pending = (0..count)
            .map(|_| self.request(challenge))
            .collect::<Result<Vec<_>, _>>()?;
        PendingAmortizedBatch::new(pending)
    }

    /// An amortized batch from explicit nonces and blinds (for known-answer tests).
    pub fn request_amortized_with(
        &self,
        challenge: &TokenChallenge,
        nonces: &[[u8; NONCE_LEN]],
        blinds: &[&[u8]],
    ) -> Result<PendingAmortizedBatch, VoprfClientError> {
        if nonces.len() != blinds.len() {
            return Err(VoprfClientError::Blinding);
        }
        let pending = nonces
            .iter()
            .zip(blinds)
            .map(|(nonce, blind)| self.request_with(challenge, nonce, blind))
            .collect::<Result<Vec<_>, _>>()?;
        PendingAmortizedBatch::new(pending)
    }
}

/// An amortized batch on its way to the issuer, with what finalizing needs.
#[derive(Debug)]
pub struct PendingAmortizedBatch {
    tokens: Vec<PendingVoprfToken>,
    request: AmortizedBatchTokenRequest,
}

impl PendingAmortizedBatch {
    fn new(tokens: Vec<PendingVoprfToken>) -> Result<Self, VoprfClientError> {
        let first = tokens.first().ok_or(VoprfClientError::Blinding)?.request();
        let request = AmortizedBatchTokenRequest {
            token_type: first.token_type,
            truncated_token_key_id: first.truncated_token_key_id,
            blinded_msgs: tokens
                .iter()
                .map(|t| t.request().blinded_msg.clone())
                .collect(),
        };
        Ok(PendingAmortizedBatch { tokens, request })
    }

    pub fn request(&self) -> &AmortizedBatchTokenRequest {
        &self.request
    }

    /// The Tokens for the issuer's encoded AmortizedBatchTokenResponse, in the request's order.
    /// The batch's one proof is verified against the issuer key over every pair before anything
    /// is unblinded (FinalizeBatch): the tokens are returned only when all of them verify.
    pub fn finalize(&self, response: &[u8]) -> Result<Vec<Token>, VoprfClientError> {
        let token_type = self.request.token_type;
        let response = AmortizedBatchTokenResponse::decode(token_type, response, self.tokens.len())
            .map_err(|_| VoprfClientError::InvalidResponse)?;
        if response.evaluated_msgs.len() != self.tokens.len() {
            return Err(VoprfClientError::InvalidResponse);
        }
        let states: Vec<&VoprfBlindState> = self.tokens.iter().map(|t| t.state()).collect();
        let inputs: Vec<&[u8]> = self.tokens.iter().map(|t| t.input()).collect();
        let evaluated: Vec<&[u8]> = response.evaluated_msgs.iter().map(Vec::as_slice).collect();
        let key = self.tokens[0].key();
        let outputs = VoprfBlindState::finalize_batch(
            &states,
            &inputs,
            &evaluated,
            &response.evaluated_proof,
            key.bytes(),
        )
        .map_err(|e| match e {
            crate::crypto::Error::ProofInvalid => VoprfClientError::InvalidProof,
            _ => VoprfClientError::InvalidResponse,
        })?;
        Ok(self
            .tokens
            .iter()
            .zip(outputs)
            .map(|(pending, authenticator)| pending.token_with(authenticator))
            .collect())
    }
}

/// One request of a generic batch, of either kind of key (boxed: the two differ in size).
#[derive(Debug)]
pub enum PendingEntry {
    BlindRsa(Box<PendingToken>),
    Voprf(Box<PendingVoprfToken>),
}

impl PendingEntry {
    fn request(&self) -> &TokenRequest {
        match self {
            PendingEntry::BlindRsa(p) => p.request(),
            PendingEntry::Voprf(p) => p.request(),
        }
    }
}

/// Why a generic batch response does not finalize.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GenericBatchClientError {
    #[error("malformed GenericBatchTokenResponse: {0}")]
    Response(BatchError),
    #[error("{got} responses for {expected} requests")]
    Count { got: usize, expected: usize },
    #[error("entry {index}: a response of type 0x{got:04x} to a request of type 0x{expected:04x}")]
    WrongType {
        index: usize,
        got: u16,
        expected: u16,
    },
    #[error("entry {index}: {error}")]
    BlindRsa { index: usize, error: ClientError },
    #[error("entry {index}: {error}")]
    Voprf {
        index: usize,
        error: VoprfClientError,
    },
}

/// A generic batch on its way to the issuer: the pending requests, in order.
#[derive(Debug)]
pub struct PendingGenericBatch {
    entries: Vec<PendingEntry>,
    request: GenericBatchTokenRequest,
}

impl PendingGenericBatch {
    pub fn new(entries: Vec<PendingEntry>) -> Self {
        let request = GenericBatchTokenRequest {
            token_requests: entries.iter().map(|e| e.request().clone()).collect(),
        };
        PendingGenericBatch { entries, request }
    }

    pub fn request(&self) -> &GenericBatchTokenRequest {
        &self.request
    }

    /// The Token of each request the issuer answered (each finalized and verified as a single
    /// response would be), `None` for each it refused, in the request's order.
    pub fn finalize(&self, response: &[u8]) -> Result<Vec<Option<Token>>, GenericBatchClientError> {
        finalize_generic(
            &self.entries,
            response,
            |entry| entry.request().token_type,
            |index, entry, bytes| match entry {
                PendingEntry::BlindRsa(p) => p
                    .finalize(bytes)
                    .map_err(|error| GenericBatchClientError::BlindRsa { index, error }),
                PendingEntry::Voprf(p) => p
                    .finalize(bytes)
                    .map_err(|error| GenericBatchClientError::Voprf { index, error }),
            },
            |e| e,
        )
    }
}

/// The Tokens of a GenericBatchTokenResponse for pending `entries` of any kind (the core's
/// [`PendingEntry`], or a binding's own handles): one per entry, `None` where the issuer
/// refused it. The response must answer every entry, each with its entry's token type;
/// `finalize` unblinds one answer, `malformed` gives a response error the caller's type.
pub fn finalize_generic<P, E>(
    entries: &[P],
    response: &[u8],
    token_type: impl Fn(&P) -> TokenType,
    finalize: impl Fn(usize, &P, &[u8]) -> Result<Token, E>,
    malformed: impl Fn(GenericBatchClientError) -> E,
) -> Result<Vec<Option<Token>>, E> {
    let response = GenericBatchTokenResponse::decode(response, entries.len())
        .map_err(|e| malformed(GenericBatchClientError::Response(e)))?;
    if response.token_responses.len() != entries.len() {
        return Err(malformed(GenericBatchClientError::Count {
            got: response.token_responses.len(),
            expected: entries.len(),
        }));
    }
    entries
        .iter()
        .zip(&response.token_responses)
        .enumerate()
        .map(|(index, (entry, answer))| {
            let Some((got, bytes)) = answer else {
                return Ok(None);
            };
            let expected = token_type(entry);
            if *got != expected {
                return Err(malformed(GenericBatchClientError::WrongType {
                    index,
                    got: got.value(),
                    expected: expected.value(),
                }));
            }
            finalize(index, entry, bytes).map(Some)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_key_batch_by_full_id_is_amortized_and_checks_each_entry_first() {
        use crate::keys::KeyValidity;
        let mut set = KeySet::new(0);
        let validity = KeyValidity::new(0, u64::MAX).unwrap();
        let key = set
            .generate_voprf(TokenType::VoprfRistretto255, validity)
            .unwrap();
        let issuer = VoprfIssuer::new(Arc::new(set));
        let id = *key.public_key().token_key_id();
        let challenge = TokenChallenge::new(5, b"issuer.example", &[], b"").unwrap();
        let pending = VoprfClient::new(key.public_key().clone())
            .request_amortized(&challenge, 3)
            .unwrap();
        let request = pending.request();
        // Bare elements and a whole TokenRequest for the key, mixed.
        let whole = [
            &[0x00, 0x05, key.public_key().truncated_token_key_id()][..],
            &request.blinded_msgs[1],
        ]
        .concat();
        let entries: Vec<&[u8]> = vec![&request.blinded_msgs[0], &whole, &request.blinded_msgs[2]];
        let response = issuer.issue_amortized_by_id(&id, &entries, 1, 100).unwrap();
        assert_eq!(pending.finalize(&response.encode()).unwrap().len(), 3);
        let short = [&request.blinded_msgs[0][..], &request.blinded_msgs[1][..5]];
        assert_eq!(
            issuer
                .issue_amortized_by_id(&id, &short, 1, 100)
                .unwrap_err(),
            VoprfIssueError::Entry {
                index: 1,
                error: Box::new(VoprfIssueError::WrongLength {
                    element: 32,
                    request: 35,
                    got: 5
                })
            }
        );
        assert_eq!(
            issuer
                .issue_amortized_by_id(&id, &entries, 1, 2)
                .unwrap_err(),
            VoprfIssueError::TooManyTokens { max: 2 }
        );
        assert_eq!(
            issuer
                .issue_amortized_by_id(&id, &[], 1, 2)
                .unwrap_err()
                .code(),
            crate::ErrorCode::UnprocessableBlindedToken
        );
        assert_eq!(
            issuer
                .issue_amortized_by_id(&[0; 32], &entries, 1, 100)
                .unwrap_err(),
            VoprfIssueError::UnknownKey
        );
    }

    #[test]
    fn parallel_map_keeps_the_order_on_any_number_of_threads() {
        let items: Vec<u32> = (0..37).collect();
        for threads in [0, 1, 2, 5, 37, 100] {
            let got = parallel_map(&items, threads, |n| n * 2);
            let want: Vec<Option<u32>> = items.iter().map(|n| Some(n * 2)).collect();
            assert_eq!(got, want, "{threads} threads");
        }
        assert!(parallel_map(&[] as &[u32], 2, |n| *n).is_empty());
    }

    #[test]
    fn varints_are_written_and_read_in_their_shortest_form_only() {
        for (n, bytes) in [
            (0usize, &[0x00][..]),
            (63, &[0x3f]),
            (64, &[0x40, 0x40]),
            (16_383, &[0x7f, 0xff]),
            (16_384, &[0x80, 0x00, 0x40, 0x00]),
            (1 << 30, &[0xc0, 0, 0, 0, 0x40, 0, 0, 0]),
        ] {
            let mut out = Vec::new();
            encode_varint(n, &mut out);
            assert_eq!(out, bytes, "{n}");
            let mut c = Cursor::new("test", bytes);
            assert_eq!(c.varint().unwrap(), n);
            c.finish().unwrap();
        }
        for longer in [
            &[0x40, 0x3f][..],
            &[0x80, 0, 0, 0x3f],
            &[0x80, 0, 0x3f, 0xff],
        ] {
            assert_eq!(
                Cursor::new("test", longer).varint().unwrap_err(),
                BatchError::NonMinimalLength { what: "test" }
            );
        }
        for short in [&[][..], &[0x40], &[0x80, 0, 0]] {
            assert!(matches!(
                Cursor::new("test", short).varint(),
                Err(BatchError::Truncated { .. })
            ));
        }
    }

    #[test]
    fn a_length_beyond_the_input_allocates_nothing_and_fails() {
        // A request claiming 2^30 bytes of elements in a few bytes.
        let input = [0x00, 0x01, 0x07, 0xc0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3];
        assert!(matches!(
            AmortizedBatchTokenRequest::decode(&input, 100),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            GenericBatchTokenRequest::decode(&input[3..], 100),
            Err(BatchError::Truncated { .. })
        ));
    }
}
