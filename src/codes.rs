//! The one table of result codes. JSON-RPC error codes, HTTP statuses and the C library's result
//! codes are all derived from it, and the README's error table is checked against it.

/// A result code of SPEC §4: a JSON-RPC error code with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    VerificationFailed,
    AlreadySpent,
    UnsupportedToken,
    UnknownIssuanceKey,
    UnprocessableBlindedToken,
    Unauthenticated,
    Forbidden,
    IdempotencyInFlight,
    IdempotencyMismatch,
    RateLimited,
    IssueAtRedemptionRoute,
    MethodNotAllowed,
    TooLarge,
    StoreUnavailable,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    Internal,
    ParseError,
}

impl ErrorCode {
    /// Every code, in the order of the table.
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::VerificationFailed,
        ErrorCode::AlreadySpent,
        ErrorCode::UnsupportedToken,
        ErrorCode::UnknownIssuanceKey,
        ErrorCode::UnprocessableBlindedToken,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::IdempotencyInFlight,
        ErrorCode::IdempotencyMismatch,
        ErrorCode::RateLimited,
        ErrorCode::IssueAtRedemptionRoute,
        ErrorCode::MethodNotAllowed,
        ErrorCode::TooLarge,
        ErrorCode::StoreUnavailable,
        ErrorCode::InvalidRequest,
        ErrorCode::MethodNotFound,
        ErrorCode::InvalidParams,
        ErrorCode::Internal,
        ErrorCode::ParseError,
    ];

    /// (JSON-RPC code, HTTP status, meaning): the row of the table.
    const fn row(self) -> (i32, u16, &'static str) {
        match self {
            ErrorCode::VerificationFailed => (
                -32020,
                403,
                "token verification failed (bad authenticator, challenge binding mismatch, unknown or expired key)",
            ),
            ErrorCode::AlreadySpent => (-32021, 403, "token already spent"),
            ErrorCode::UnsupportedToken => {
                (
                -32022,
                400,
                "redeem: token type or parameters not served here (another token type, compressed tokens)",
            )
            }
            ErrorCode::UnknownIssuanceKey => {
                (-32023, 404, "issue: key-id unknown or not active for issuance")
            }
            ErrorCode::UnprocessableBlindedToken => (
                -32024,
                422,
                "issue: blinded token unprocessable (bad base64, wrong length, wrong token type, value not below the modulus, truncated id mismatch)",
            ),
            ErrorCode::Unauthenticated => (-32030, 401, "missing or invalid credentials"),
            ErrorCode::Forbidden => (-32031, 403, "credentials not allowed for this method or key"),
            ErrorCode::IdempotencyInFlight => {
                (-32032, 409, "Idempotency-Key in use by a request in flight")
            }
            ErrorCode::IdempotencyMismatch => {
                (-32033, 422, "Idempotency-Key reused with a different request")
            }
            ErrorCode::RateLimited => (-32034, 429, "rate limit exceeded"),
            ErrorCode::IssueAtRedemptionRoute => {
                (-32040, 400, "`issue` requested at a redemption-only route")
            }
            ErrorCode::MethodNotAllowed => (-32041, 405, "HTTP method other than POST"),
            ErrorCode::TooLarge => (-32042, 413, "request body or batch too large"),
            ErrorCode::StoreUnavailable => (
                -32050,
                503,
                "spend store unavailable: nothing was recorded, retry later",
            ),
            ErrorCode::InvalidRequest => (-32600, 400, "invalid JSON-RPC request"),
            ErrorCode::MethodNotFound => (-32601, 400, "method not found"),
            ErrorCode::InvalidParams => (
                -32602,
                400,
                "invalid params (also a malformed token of a served type: truncated, too long, trailing bytes)",
            ),
            ErrorCode::Internal => (-32603, 500, "internal error"),
            ErrorCode::ParseError => (-32700, 400, "parse error"),
        }
    }

    /// The JSON-RPC error code.
    pub const fn code(self) -> i32 {
        self.row().0
    }

    /// The HTTP status a single request failing with this code answers.
    pub const fn http_status(self) -> u16 {
        self.row().1
    }

    /// What the code means, as written in the table.
    pub const fn meaning(self) -> &'static str {
        self.row().2
    }

    /// The code for a JSON-RPC error code, if it is one of the table's.
    pub fn from_code(code: i32) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The table as Markdown, exactly as the README shows it.
    pub fn markdown_table() -> String {
        let mut out = String::from("| code | HTTP | meaning |\n|---|---|---|\n");
        for c in ErrorCode::ALL {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                c.code(),
                c.http_status(),
                c.meaning()
            ));
        }
        out
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code(), self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
        }
        let mut codes: Vec<i32> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
    }
}
