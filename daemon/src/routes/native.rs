//! `POST /token-request`: RFC 9578 §6 native issuance, a TokenRequest in and a TokenResponse
//! out, and the batches of draft-ietf-privacypass-batched-tokens on the same route. The
//! Content-Type picks the kind: `application/private-token-request` (one token: its token type
//! picks the protocol, Blind RSA for 0x0002, VOPRF evaluation for 0x0001 and 0x0005),
//! `...-amortized-batch-request` (VOPRF tokens of one key, one proof) or
//! `...-generic-batch-request` (TokenRequests of any types and keys). A batch holds at most
//! `--max-batch-tokens` tokens, checked with its decoding before anything is signed, and counts
//! that many against the rate limits.

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use privacypass_core::batch::{
    self, AmortizedBatchTokenRequest, BatchError, GenericBatchTokenRequest,
    AMORTIZED_REQUEST_MEDIA_TYPE, AMORTIZED_RESPONSE_MEDIA_TYPE, GENERIC_REQUEST_MEDIA_TYPE,
    GENERIC_RESPONSE_MEDIA_TYPE,
};
use privacypass_core::wire::TokenRequest;
use privacypass_core::{ErrorCode, Issuer, KeySet, TokenType, VoprfIssuer};

use crate::app::App;
use crate::auth::{ApiMethod, Caller};
use crate::error::ApiError;
use crate::http::{respond, text_response, Resp, TOKEN_REQUEST_TYPE, TOKEN_RESPONSE_TYPE};
use crate::metrics::{BatchKind, Op};
use crate::routes::issuance::{measured, sign_blocking};

/// What a `/token-request` body is, by its Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeKind {
    Single,
    Amortized,
    Generic,
}

impl NativeKind {
    /// The kind a Content-Type names (its media type, parameters ignored, any case); `None`
    /// for another, which the route answers 415.
    pub fn of_content_type(content_type: &str) -> Option<NativeKind> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        [
            (TOKEN_REQUEST_TYPE, NativeKind::Single),
            (AMORTIZED_REQUEST_MEDIA_TYPE, NativeKind::Amortized),
            (GENERIC_REQUEST_MEDIA_TYPE, NativeKind::Generic),
        ]
        .into_iter()
        .find(|(name, _)| media.eq_ignore_ascii_case(name))
        .map(|(_, kind)| kind)
    }
}

/// A `/token-request` body, decoded as far as admission needs: how many tokens it asks for.
#[derive(Debug)]
pub enum NativeRequest {
    Single(Bytes),
    Amortized(Bytes, AmortizedBatchTokenRequest),
    Generic(Bytes, GenericBatchTokenRequest),
}

impl NativeRequest {
    /// Decodes a batch (strictly, at most `max_tokens` of them); a single request is decoded
    /// by its issuer, as it always was.
    pub fn parse(kind: NativeKind, raw: Bytes, max_tokens: usize) -> Result<Self, ApiError> {
        let refused = |e: BatchError| match e {
            BatchError::TooManyTokens { max } => ApiError::new(
                ErrorCode::TooLarge,
                format!("the batch holds more than {max} tokens (--max-batch-tokens)"),
            ),
            other => ApiError::new(ErrorCode::UnprocessableBlindedToken, other.to_string()),
        };
        Ok(match kind {
            NativeKind::Single => NativeRequest::Single(raw),
            NativeKind::Amortized => {
                let batch =
                    AmortizedBatchTokenRequest::decode(&raw, max_tokens).map_err(refused)?;
                NativeRequest::Amortized(raw, batch)
            }
            NativeKind::Generic => {
                let batch = GenericBatchTokenRequest::decode(&raw, max_tokens).map_err(refused)?;
                NativeRequest::Generic(raw, batch)
            }
        })
    }

    /// The tokens the body asks for: what rate limits count.
    pub fn tokens(&self) -> u64 {
        match self {
            NativeRequest::Single(_) => 1,
            NativeRequest::Amortized(_, batch) => batch.blinded_msgs.len() as u64,
            NativeRequest::Generic(_, batch) => batch.token_requests.len() as u64,
        }
    }

    pub fn raw(&self) -> &Bytes {
        match self {
            NativeRequest::Single(raw)
            | NativeRequest::Amortized(raw, _)
            | NativeRequest::Generic(raw, _) => raw,
        }
    }
}

/// The full id of the key a request's type and truncated id name, when one issues now.
fn named_key(keys: &KeySet, token_type: TokenType, truncated: u8, now: u64) -> Option<[u8; 32]> {
    if token_type.is_privately_verifiable() {
        keys.voprf_issuance_key_by_truncated(token_type, truncated, now)
            .map(|key| *key.public_key().token_key_id())
    } else {
        keys.issuance_key_by_truncated(truncated, now)
            .map(|key| *key.public_key().token_key_id())
    }
}

/// The request in `body`: one token signed (type 2) or evaluated (types 1 and 5), or a batch.
pub async fn token_request(
    app: &App,
    caller: &Caller,
    body: NativeRequest,
) -> Result<Resp, ApiError> {
    caller.allow_method(ApiMethod::Issue)?;
    let keys = app.keys();
    let now = privacypass_core::unix_now();
    if caller.key.is_some() {
        // Each request names its key; an API key limited to some keys allows only those.
        let named: Vec<(TokenType, u8)> = match &body {
            NativeRequest::Single(raw) => TokenRequest::encoded_token_type(raw)
                .and_then(TokenType::from_value)
                .zip(TokenRequest::encoded_truncated_key_id(raw))
                .into_iter()
                .collect(),
            NativeRequest::Amortized(_, batch) => {
                vec![(batch.token_type, batch.truncated_token_key_id)]
            }
            NativeRequest::Generic(_, batch) => batch
                .token_requests
                .iter()
                .map(|r| (r.token_type, r.truncated_token_key_id))
                .collect(),
        };
        for (token_type, truncated) in named {
            if let Some(key_id) = named_key(&keys, token_type, truncated, now) {
                caller.allow_token_key(&key_id)?;
            }
        }
    }
    match body {
        NativeRequest::Single(raw) => single(app, keys, raw, now).await,
        NativeRequest::Amortized(raw, batch) => amortized(app, keys, raw, batch, now).await,
        NativeRequest::Generic(_, batch) => generic(app, keys, batch, now).await,
    }
}

async fn single(app: &App, keys: Arc<KeySet>, body: Bytes, now: u64) -> Result<Resp, ApiError> {
    let token_type = TokenRequest::encoded_token_type(&body).and_then(TokenType::from_value);
    let response = if token_type.is_some_and(TokenType::is_privately_verifiable) {
        let issuer = VoprfIssuer::new(keys);
        let evaluating =
            sign_blocking(move || issuer.issue_request(&body, now).map(|r| r.encode()));
        measured(app, Op::Issue, evaluating).await
    } else {
        let issuer = Issuer::new(keys);
        let signing = sign_blocking(move || issuer.issue_request(&body, now).map(|r| r.encode()));
        measured(app, Op::Issue, signing).await
    };
    if let Some(token_type) = token_type {
        app.metrics
            .record_type(Op::Issue, token_type, response.is_ok());
    }
    Ok(respond(StatusCode::OK, TOKEN_RESPONSE_TYPE, response?))
}

/// An amortized batch: every element evaluated with one key, one proof, on the blocking pool.
async fn amortized(
    app: &App,
    keys: Arc<KeySet>,
    raw: Bytes,
    batch: AmortizedBatchTokenRequest,
    now: u64,
) -> Result<Resp, ApiError> {
    let (token_type, count) = (batch.token_type, batch.blinded_msgs.len() as u64);
    let max = app.settings.max_batch_tokens;
    let issuer = VoprfIssuer::new(keys);
    let evaluating =
        sign_blocking(move || issuer.issue_amortized(&raw, now, max).map(|r| r.encode()));
    let response = measured(app, Op::Issue, evaluating).await;
    app.metrics.record_batch(BatchKind::Amortized);
    app.metrics.record_batch_tokens(
        BatchKind::Amortized,
        token_type,
        count,
        if response.is_ok() { count } else { 0 },
    );
    app.metrics
        .record_type(Op::Issue, token_type, response.is_ok());
    Ok(respond(
        StatusCode::OK,
        AMORTIZED_RESPONSE_MEDIA_TYPE,
        response?,
    ))
}

/// A generic batch: each entry issued as a single request would be, on both cores; 200 when
/// every entry was issued, 206 (Partial Content) with the refused entries absent when some
/// were, 400 when none was (the draft's answers).
async fn generic(
    app: &App,
    keys: Arc<KeySet>,
    batch: GenericBatchTokenRequest,
    now: u64,
) -> Result<Resp, ApiError> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let types: Vec<TokenType> = batch.token_requests.iter().map(|r| r.token_type).collect();
    let issuing =
        sign_blocking(move || Ok::<_, ApiError>(batch::issue_generic(&keys, &batch, now, threads)));
    let response = measured(app, Op::Issue, issuing).await?;
    app.metrics.record_batch(BatchKind::Generic);
    for token_type in [
        TokenType::VoprfP384,
        TokenType::BlindRsa2048,
        TokenType::VoprfRistretto255,
    ] {
        let asked = types.iter().filter(|t| **t == token_type).count() as u64;
        let issued = response
            .token_responses
            .iter()
            .zip(&types)
            .filter(|(r, t)| **t == token_type && r.is_some())
            .count() as u64;
        if asked > 0 {
            app.metrics
                .record_batch_tokens(BatchKind::Generic, token_type, asked, issued);
        }
    }
    let issued = response
        .token_responses
        .iter()
        .filter(|r| r.is_some())
        .count();
    if issued == 0 {
        return Ok(text_response(
            StatusCode::BAD_REQUEST,
            "no entry of the batch could be issued (unknown keys or bad blinded elements)",
        ));
    }
    let status = if issued == types.len() {
        StatusCode::OK
    } else {
        StatusCode::PARTIAL_CONTENT
    };
    Ok(respond(
        status,
        GENERIC_RESPONSE_MEDIA_TYPE,
        response.encode(),
    ))
}
