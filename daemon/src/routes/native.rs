//! `POST /token-request`: RFC 9578 §6 native issuance, a TokenRequest in and a TokenResponse
//! out.

use bytes::Bytes;
use hyper::StatusCode;
use privacypass::wire::TokenRequest;
use privacypass::Issuer;

use crate::app::App;
use crate::auth::{ApiMethod, Caller};
use crate::error::ApiError;
use crate::http::{respond, Resp, TOKEN_RESPONSE_TYPE};
use crate::metrics::Op;
use crate::routes::issuance::{measured, sign_blocking};

/// The TokenRequest in `body`, signed.
pub async fn token_request(app: &App, caller: &Caller, body: Bytes) -> Result<Resp, ApiError> {
    caller.allow_method(ApiMethod::Issue)?;
    let keys = app.keys();
    let now = privacypass::unix_now();
    if caller.key.is_some() {
        // The truncated id names the key; a request too short to hold one fails below.
        if let Some(key) = TokenRequest::encoded_truncated_key_id(&body)
            .and_then(|truncated| keys.issuance_key_by_truncated(truncated, now))
        {
            caller.allow_token_key(key.public_key().token_key_id())?;
        }
    }
    let issuer = Issuer::new(keys);
    let signing = sign_blocking(move || issuer.issue_request(&body, now));
    let response = measured(app, Op::Issue, signing).await?;
    Ok(respond(
        StatusCode::OK,
        TOKEN_RESPONSE_TYPE,
        response.encode(),
    ))
}
