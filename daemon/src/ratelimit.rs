//! Rate limits of the API routes: each API key's window (`--rate-limit`), the one window all
//! issuance without API keys shares (`--anonymous-issue-limit`), and the `RateLimit-*` headers
//! of the answer.

use std::sync::Arc;

use hyper::header::{HeaderMap, RETRY_AFTER};
use privacypass_core::ErrorCode;

use crate::app::App;
use crate::auth::ApiKey;
use crate::config::RateLimit;
use crate::error::ApiError;

/// Where a key stands in its window after a request was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateState {
    pub limit: u64,
    pub used: u64,
    pub reset_secs: u64,
}

impl RateState {
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    pub fn exceeded(&self) -> bool {
        self.used > self.limit
    }

    pub fn error(&self) -> ApiError {
        ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "more than {} calls in this window; retry in {} s",
                self.limit, self.reset_secs
            ),
        )
    }

    /// `RateLimit-Limit`, `-Remaining`, `-Reset`, and `Retry-After` past the limit.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", self.limit.into());
        headers.insert("ratelimit-remaining", self.remaining().into());
        headers.insert("ratelimit-reset", self.reset_secs.into());
        if self.exceeded() {
            headers.insert(RETRY_AFTER, self.reset_secs.into());
        }
    }
}

/// Counts `hits` calls against the API key's window; refuses them over the limit. `rate`
/// keeps where the key stands, for the answer's headers.
pub async fn count_calls(
    app: &Arc<App>,
    key: &ApiKey,
    hits: u64,
    rate: &mut Option<RateState>,
) -> Result<(), ApiError> {
    let Some(limit) = app.settings.rate_limit else {
        return Ok(());
    };
    count_in(app, limit, format!("rate:{}:{limit}", key.id()), hits, rate).await
}

/// Counts `hits` issuance calls made without an API key against the one window all such
/// clients share.
pub async fn count_anonymous_issuance(
    app: &Arc<App>,
    hits: u64,
    rate: &mut Option<RateState>,
) -> Result<(), ApiError> {
    let Some(limit) = app.settings.anonymous_issue_limit.filter(|_| hits > 0) else {
        return Ok(());
    };
    let bucket = format!("rate:anonymous-issue:{limit}");
    count_in(app, limit, bucket, hits, rate).await
}

async fn count_in(
    app: &Arc<App>,
    limit: RateLimit,
    bucket: String,
    hits: u64,
    rate: &mut Option<RateState>,
) -> Result<(), ApiError> {
    let (start, reset_secs) = limit.window(privacypass_core::unix_now());
    let used = app
        .on_request_state(move |app| app.rate_limits.add(&bucket, start, limit.window_secs, hits))
        .await?;
    let state = RateState {
        limit: limit.calls,
        used,
        reset_secs,
    };
    *rate = Some(state);
    if state.exceeded() {
        return Err(state.error());
    }
    Ok(())
}
