//! The one table of result codes. JSON-RPC error codes, HTTP statuses and the C library's result
//! codes are all derived from it: `xtask codes` generates the C library's `pp_result`
//! (`ffi/src/codes.rs`), the Go constants and sentinels (`bindings/go/codes.go`), Python's
//! result table (`bindings/python/privacypass/errors.py`) and the README's tables from it, and
//! `make check-generated` fails when one of them differs.

/// A row of the error table (the README's "Errors"): a JSON-RPC error code with its HTTP status.
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

    /// The row's name, as the bindings spell their constants (`AlreadySpent`).
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::VerificationFailed => "VerificationFailed",
            ErrorCode::AlreadySpent => "AlreadySpent",
            ErrorCode::UnsupportedToken => "UnsupportedToken",
            ErrorCode::UnknownIssuanceKey => "UnknownIssuanceKey",
            ErrorCode::UnprocessableBlindedToken => "UnprocessableBlindedToken",
            ErrorCode::Unauthenticated => "Unauthenticated",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::IdempotencyInFlight => "IdempotencyInFlight",
            ErrorCode::IdempotencyMismatch => "IdempotencyMismatch",
            ErrorCode::RateLimited => "RateLimited",
            ErrorCode::IssueAtRedemptionRoute => "IssueAtRedemptionRoute",
            ErrorCode::MethodNotAllowed => "MethodNotAllowed",
            ErrorCode::TooLarge => "TooLarge",
            ErrorCode::StoreUnavailable => "StoreUnavailable",
            ErrorCode::InvalidRequest => "InvalidRequest",
            ErrorCode::MethodNotFound => "MethodNotFound",
            ErrorCode::InvalidParams => "InvalidParams",
            ErrorCode::Internal => "Internal",
            ErrorCode::ParseError => "ParseError",
        }
    }

    /// Whether the C library (and so the Go and Python bindings) can return the code; the
    /// others concern the daemon's HTTP surface alone.
    pub const fn in_library(self) -> bool {
        matches!(
            self,
            ErrorCode::VerificationFailed
                | ErrorCode::AlreadySpent
                | ErrorCode::UnsupportedToken
                | ErrorCode::UnknownIssuanceKey
                | ErrorCode::UnprocessableBlindedToken
                | ErrorCode::StoreUnavailable
                | ErrorCode::InvalidParams
                | ErrorCode::Internal
        )
    }

    /// What the C library answers the code for, where that says more than the meaning.
    pub const fn library_note(self) -> Option<&'static str> {
        match self {
            ErrorCode::UnsupportedToken => Some(
                "a token or challenge of a type the library does not serve; bytes of a served type that are not a token are PP_ERR_INVALID_PARAMS",
            ),
            ErrorCode::InvalidParams => Some(
                "a malformed token of a served type (truncated, too long, trailing bytes) or a malformed `Authorization` value (not `PrivateToken token=...`, bad base64)",
            ),
            ErrorCode::Internal => Some("the OS random generator or the crypto backend failed"),
            _ => None,
        }
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

/// The C library's own result codes (small positive values, beside the table's rows): misuse
/// of the C API and configuration problems. For a peer each one is an internal error (-32603,
/// HTTP 500).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LibraryCode {
    NullArgument,
    BufferTooSmall,
    InvalidInput,
    InvalidKey,
    InvalidStoreUrl,
    Panic,
    PrivateTokenType,
}

impl LibraryCode {
    /// Every library code, in the order of their values.
    pub const ALL: [LibraryCode; 7] = [
        LibraryCode::NullArgument,
        LibraryCode::BufferTooSmall,
        LibraryCode::InvalidInput,
        LibraryCode::InvalidKey,
        LibraryCode::InvalidStoreUrl,
        LibraryCode::Panic,
        LibraryCode::PrivateTokenType,
    ];

    /// (value, name, short meaning, description): the row.
    const fn row(self) -> (i32, &'static str, &'static str, &'static str) {
        match self {
            LibraryCode::NullArgument => (
                1,
                "NullArgument",
                "a required pointer argument is NULL",
                "A required pointer argument is NULL, or a buffer is `(NULL, n > 0)`.",
            ),
            LibraryCode::BufferTooSmall => (
                2,
                "BufferTooSmall",
                "the output buffer is too small; *out_len holds the size needed",
                "The output buffer is too small; `*out_len` holds the size needed and nothing else was written.",
            ),
            LibraryCode::InvalidInput => (
                3,
                "InvalidInput",
                "an argument is malformed or has the wrong length",
                "An argument is malformed: a fixed-size argument of the wrong length, text that is not UTF-8, a malformed TokenChallenge, TokenResponse or issuer directory.",
            ),
            LibraryCode::InvalidKey => (
                4,
                "InvalidKey",
                "not a usable issuer key (RSA-2048 SPKI, PEM or issuer directory; VOPRF scalar or element)",
                "Not a usable key: not RSA-2048 with e = 65537, wrong RSASSA-PSS parameters, bad PEM, no token type 2 key in a directory; for types 1 and 5 a scalar that is not a canonical nonzero scalar or bytes that are not an element of the group.",
            ),
            LibraryCode::InvalidStoreUrl => (
                5,
                "InvalidStoreUrl",
                "unsupported or invalid spend store URL (memory:, rocksdb:PATH, redis://, redis+cluster://)",
                "The spend store URL is not one this library opens (`memory:`, `memory:CAPACITY`, `rocksdb:PATH`, `redis://HOST:PORT`, `redis+cluster://HOST:PORT,...`).",
            ),
            LibraryCode::Panic => (
                6,
                "Panic",
                "a panic was caught inside libprivacypass (a bug)",
                "A panic was caught at the boundary: a bug in libprivacypass. The handles involved stay usable.",
            ),
            LibraryCode::PrivateTokenType => (
                7,
                "PrivateTokenType",
                "a privately verifiable token (type 1 or 5) needs the issuer's private key; this verifier holds public keys only",
                "A token of a privately verifiable type (0x0001 VOPRF P-384, 0x0005 VOPRF ristretto255) given to a verifier or redeemer of public keys only: only the issuer's private key verifies it (a redeemer from `pp_redeemer_new_from_issuer` does).",
            ),
        }
    }

    /// The `pp_result` value.
    pub const fn value(self) -> i32 {
        self.row().0
    }

    /// The name, as the bindings spell their constants (`BufferTooSmall`).
    pub const fn name(self) -> &'static str {
        self.row().1
    }

    /// The short text `pp_result_str` answers.
    pub const fn meaning(self) -> &'static str {
        self.row().2
    }

    /// The longer description of the header's documentation.
    pub const fn description(self) -> &'static str {
        self.row().3
    }

    /// Whether the Go and Python bindings can return it: they pass no NULL pointer and size
    /// every output buffer themselves, so the first two never reach their callers.
    pub const fn from_bindings(self) -> bool {
        !matches!(
            self,
            LibraryCode::NullArgument | LibraryCode::BufferTooSmall
        )
    }

    /// The library code of a value, if it is one.
    pub fn from_value(value: i32) -> Option<LibraryCode> {
        LibraryCode::ALL.into_iter().find(|c| c.value() == value)
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

    #[test]
    fn library_codes_are_positive_distinct_and_named_once() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.name()).collect();
        for c in LibraryCode::ALL {
            assert!(c.value() > 0);
            assert_eq!(LibraryCode::from_value(c.value()), Some(c));
            assert!(ErrorCode::from_code(c.value()).is_none());
            names.push(c.name());
        }
        for c in ErrorCode::ALL {
            // The name is the variant's, so that the generated constants read like the code.
            assert_eq!(c.name(), format!("{c:?}"));
            assert!(c.in_library() || c.library_note().is_none(), "{c:?}");
        }
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
