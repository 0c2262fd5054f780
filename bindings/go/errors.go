package privacypass

// #include "privacypass.h"
import "C"

import (
	"errors"
	"fmt"
)

// Code is a libprivacypass result code (pp_result). The protocol errors' values are the JSON-RPC
// codes of the project's error table (SPEC §4): a service can answer int(code) as the JSON-RPC
// error.code and code.HTTPStatus() as the HTTP status. The library's own codes (positive) report
// misuse and configuration problems; for a peer they are internal errors (-32603, HTTP 500).
type Code int

// The result codes, as include/privacypass.h defines them.
const (
	CodeOK                        Code = C.PP_OK
	CodeVerificationFailed        Code = C.PP_ERR_VERIFICATION_FAILED         // -32020, HTTP 403
	CodeAlreadySpent              Code = C.PP_ERR_ALREADY_SPENT               // -32021, HTTP 403
	CodeUnsupportedToken          Code = C.PP_ERR_UNSUPPORTED_TOKEN           // -32022, HTTP 400
	CodeUnknownIssuanceKey        Code = C.PP_ERR_UNKNOWN_ISSUANCE_KEY        // -32023, HTTP 404
	CodeUnprocessableBlindedToken Code = C.PP_ERR_UNPROCESSABLE_BLINDED_TOKEN // -32024, HTTP 422
	CodeUnauthenticated           Code = C.PP_ERR_UNAUTHENTICATED             // -32030, HTTP 401 (daemon only)
	CodeForbidden                 Code = C.PP_ERR_FORBIDDEN                   // -32031, HTTP 403 (daemon only)
	CodeIdempotencyInFlight       Code = C.PP_ERR_IDEMPOTENCY_IN_FLIGHT       // -32032, HTTP 409 (daemon only)
	CodeIdempotencyMismatch       Code = C.PP_ERR_IDEMPOTENCY_MISMATCH        // -32033, HTTP 422 (daemon only)
	CodeRateLimited               Code = C.PP_ERR_RATE_LIMITED                // -32034, HTTP 429 (daemon only)
	CodeIssueAtRedemptionRoute    Code = C.PP_ERR_ISSUE_AT_REDEMPTION_ROUTE   // -32040, HTTP 400 (daemon only)
	CodeMethodNotAllowed          Code = C.PP_ERR_METHOD_NOT_ALLOWED          // -32041, HTTP 405 (daemon only)
	CodeTooLarge                  Code = C.PP_ERR_TOO_LARGE                   // -32042, HTTP 413 (daemon only)
	CodeStoreUnavailable          Code = C.PP_ERR_STORE_UNAVAILABLE           // -32050, HTTP 503
	CodeInvalidRequest            Code = C.PP_ERR_INVALID_REQUEST             // -32600, HTTP 400 (daemon only)
	CodeMethodNotFound            Code = C.PP_ERR_METHOD_NOT_FOUND            // -32601, HTTP 400 (daemon only)
	CodeInvalidParams             Code = C.PP_ERR_INVALID_PARAMS              // -32602, HTTP 400
	CodeInternal                  Code = C.PP_ERR_INTERNAL                    // -32603, HTTP 500
	CodeParseError                Code = C.PP_ERR_PARSE_ERROR                 // -32700, HTTP 400 (daemon only)
	CodeNullArgument              Code = C.PP_ERR_NULL_ARGUMENT               // 1: never from this package
	CodeBufferTooSmall            Code = C.PP_ERR_BUFFER_TOO_SMALL            // 2: never from this package
	CodeInvalidInput              Code = C.PP_ERR_INVALID_INPUT               // 3: a malformed argument
	CodeInvalidKey                Code = C.PP_ERR_INVALID_KEY                 // 4: not a usable key
	CodeInvalidStoreURL           Code = C.PP_ERR_INVALID_STORE_URL           // 5: not a store URL NewRedeemer opens (memory:, rocksdb:, redis://, redis+cluster://)
	CodePanic                     Code = C.PP_ERR_PANIC                       // 6: a bug in libprivacypass
)

// String is the library's description of the code (the meaning column of the error table for
// the protocol errors), e.g. "token already spent".
func (c Code) String() string { return C.GoString(C.pp_result_str(C.int(c))) }

// JSONRPCCode is the JSON-RPC error code the code answers: the code itself for the protocol
// errors, 0 for CodeOK, -32603 (internal error) for the library's own codes.
func (c Code) JSONRPCCode() int { return int(C.pp_result_jsonrpc_code(C.int(c))) }

// HTTPStatus is the HTTP status the code answers, from the error table: 200 for CodeOK, 500 for
// the library's own codes.
func (c Code) HTTPStatus() int { return int(C.pp_result_http_status(C.int(c))) }

// Error is a failed libprivacypass call: the result code and the operation that answered it.
// Compare with the sentinels through errors.Is (errors.Is(err, ErrAlreadySpent)), or take the
// code with errors.As.
type Error struct {
	code Code
	op   string
}

// Code is the result code: for the protocol errors, the SPEC §4 (JSON-RPC) code.
func (e *Error) Code() Code { return e.code }

// Op is the C function that failed, e.g. "pp_redeemer_redeem"; empty for the sentinels.
func (e *Error) Op() string { return e.op }

// HTTPStatus is the HTTP status the error answers (e.Code().HTTPStatus()).
func (e *Error) HTTPStatus() int { return e.code.HTTPStatus() }

// Error is "privacypass: OP: DESCRIPTION (CODE)", e.g. "privacypass: pp_redeemer_redeem: token
// already spent (-32021)"; without OP for the sentinels. Compare errors with errors.Is and
// errors.As, not by this text.
func (e *Error) Error() string {
	if e.op == "" {
		return fmt.Sprintf("privacypass: %s (%d)", e.code, int(e.code))
	}
	return fmt.Sprintf("privacypass: %s: %s (%d)", e.op, e.code, int(e.code))
}

// Is makes every *Error match the sentinel of its code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.code == e.code
}

// Sentinels, one per result code, for errors.Is.
var (
	ErrVerificationFailed        = &Error{code: CodeVerificationFailed}
	ErrAlreadySpent              = &Error{code: CodeAlreadySpent}
	ErrUnsupportedToken          = &Error{code: CodeUnsupportedToken}
	ErrUnknownIssuanceKey        = &Error{code: CodeUnknownIssuanceKey}
	ErrUnprocessableBlindedToken = &Error{code: CodeUnprocessableBlindedToken}
	ErrUnauthenticated           = &Error{code: CodeUnauthenticated}
	ErrForbidden                 = &Error{code: CodeForbidden}
	ErrIdempotencyInFlight       = &Error{code: CodeIdempotencyInFlight}
	ErrIdempotencyMismatch       = &Error{code: CodeIdempotencyMismatch}
	ErrRateLimited               = &Error{code: CodeRateLimited}
	ErrIssueAtRedemptionRoute    = &Error{code: CodeIssueAtRedemptionRoute}
	ErrMethodNotAllowed          = &Error{code: CodeMethodNotAllowed}
	ErrTooLarge                  = &Error{code: CodeTooLarge}
	ErrStoreUnavailable          = &Error{code: CodeStoreUnavailable}
	ErrInvalidRequest            = &Error{code: CodeInvalidRequest}
	ErrMethodNotFound            = &Error{code: CodeMethodNotFound}
	ErrInvalidParams             = &Error{code: CodeInvalidParams}
	ErrInternal                  = &Error{code: CodeInternal}
	ErrParseError                = &Error{code: CodeParseError}
	ErrNullArgument              = &Error{code: CodeNullArgument}
	ErrBufferTooSmall            = &Error{code: CodeBufferTooSmall}
	ErrInvalidInput              = &Error{code: CodeInvalidInput}
	ErrInvalidKey                = &Error{code: CodeInvalidKey}
	ErrInvalidStoreURL           = &Error{code: CodeInvalidStoreURL}
	ErrPanic                     = &Error{code: CodePanic}
)

// ErrClosed is answered by every method of a handle after its Close; test for it with
// errors.Is(err, ErrClosed). It is not an *Error: the C library was not called, so there is no
// result Code, and errors.As(err, &e) with e an *Error does not match it. It reports a bug in
// the calling program: a service mapping errors onto the error table should answer it as an
// internal error (-32603, HTTP 500), as it does the library's own codes.
var ErrClosed = errors.New("privacypass: use of a closed handle")

// check turns a result code into nil or an *Error.
func check(op string, rc C.enum_pp_result) error {
	if Code(rc) == CodeOK {
		return nil
	}
	return &Error{code: Code(rc), op: op}
}

func fail(op string, c Code) error {
	if c == CodeOK {
		return nil
	}
	return &Error{code: c, op: op}
}
