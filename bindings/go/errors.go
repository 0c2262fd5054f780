package privacypass

// #include "privacypass.h"
import "C"

import (
	"errors"
	"fmt"
)

// Code is a libprivacypass result code (pp_result). The protocol errors' values are the JSON-RPC
// codes of the project's error table (the README's "Errors"): a service can answer int(code) as the JSON-RPC
// error.code and code.HTTPStatus() as the HTTP status. The library's own codes (positive) report
// misuse and configuration problems; for a peer they are internal errors (-32603, HTTP 500).
type Code int

// The constants, one per result code, are in codes.go (generated from the project's table).

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

// Code is the result code: for the protocol errors, the error table's (JSON-RPC) code.
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

// The sentinels, one per result code, for errors.Is (ErrAlreadySpent, ...), are in codes.go.

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
