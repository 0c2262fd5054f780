//! `POST /token-request`: RFC 9578 §6 native issuance, a TokenRequest in and a TokenResponse
//! out. The TokenRequest's token type picks the issuance protocol: Blind RSA for 0x0002, VOPRF
//! evaluation for 0x0001 and 0x0005 (a TokenResponse with its DLEQ proof).

use bytes::Bytes;
use hyper::StatusCode;
use privacypass::wire::TokenRequest;
use privacypass::{Issuer, TokenType, VoprfIssuer};

use crate::app::App;
use crate::auth::{ApiMethod, Caller};
use crate::error::ApiError;
use crate::http::{respond, Resp, TOKEN_RESPONSE_TYPE};
use crate::metrics::Op;
use crate::routes::issuance::{measured, sign_blocking};

/// The TokenRequest in `body`, signed (type 2) or evaluated (types 1 and 5).
pub async fn token_request(app: &App, caller: &Caller, body: Bytes) -> Result<Resp, ApiError> {
    caller.allow_method(ApiMethod::Issue)?;
    let keys = app.keys();
    let now = privacypass::unix_now();
    let token_type = TokenRequest::encoded_token_type(&body).and_then(TokenType::from_value);
    let voprf_type = token_type.filter(|t| t.is_privately_verifiable());
    if caller.key.is_some() {
        // The truncated id names the key; a request too short to hold one fails below.
        let truncated = TokenRequest::encoded_truncated_key_id(&body);
        let key_id = match voprf_type {
            Some(token_type) => truncated
                .and_then(|t| keys.voprf_issuance_key_by_truncated(token_type, t, now))
                .map(|key| *key.public_key().token_key_id()),
            None => truncated
                .and_then(|t| keys.issuance_key_by_truncated(t, now))
                .map(|key| *key.public_key().token_key_id()),
        };
        if let Some(key_id) = key_id {
            caller.allow_token_key(&key_id)?;
        }
    }
    let response = if voprf_type.is_some() {
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
    let response = response?;
    Ok(respond(StatusCode::OK, TOKEN_RESPONSE_TYPE, response))
}
