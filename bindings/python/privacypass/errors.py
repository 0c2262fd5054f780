"""Exceptions: one class per ``pp_result`` code of include/privacypass.h, under PrivacyPassError.

Every class is made from ``RESULT_CODES``, the one table of this module, which lists the
header's ``pp_result`` values one to one (generated with them from the project's src/codes.rs;
a test compares it with the header). The protocol
errors' codes are the JSON-RPC codes of the project's error table (e.g. ``AlreadySpent.code ==
-32021``); the library's own codes are small positive numbers.

    try:
        redeemer.redeem(token)
    except privacypass.AlreadySpent:
        ...
    except privacypass.PrivacyPassError as err:
        print(err.code, err.message, err.http_status, err.jsonrpc_code)
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Dict, Optional, Tuple, Type

from ._native import lib

# BEGIN GENERATED result codes (make generated, from src/codes.rs; do not edit)
# (Python class name, C name, value): every pp_result of include/privacypass.h but PP_OK.
RESULT_CODES: Tuple[Tuple[str, str, int], ...] = (
    ("VerificationFailed", "PP_ERR_VERIFICATION_FAILED", -32020),
    ("AlreadySpent", "PP_ERR_ALREADY_SPENT", -32021),
    ("UnsupportedToken", "PP_ERR_UNSUPPORTED_TOKEN", -32022),
    ("UnknownIssuanceKey", "PP_ERR_UNKNOWN_ISSUANCE_KEY", -32023),
    ("UnprocessableBlindedToken", "PP_ERR_UNPROCESSABLE_BLINDED_TOKEN", -32024),
    ("Unauthenticated", "PP_ERR_UNAUTHENTICATED", -32030),
    ("Forbidden", "PP_ERR_FORBIDDEN", -32031),
    ("IdempotencyInFlight", "PP_ERR_IDEMPOTENCY_IN_FLIGHT", -32032),
    ("IdempotencyMismatch", "PP_ERR_IDEMPOTENCY_MISMATCH", -32033),
    ("RateLimited", "PP_ERR_RATE_LIMITED", -32034),
    ("IssueAtRedemptionRoute", "PP_ERR_ISSUE_AT_REDEMPTION_ROUTE", -32040),
    ("MethodNotAllowed", "PP_ERR_METHOD_NOT_ALLOWED", -32041),
    ("TooLarge", "PP_ERR_TOO_LARGE", -32042),
    ("StoreUnavailable", "PP_ERR_STORE_UNAVAILABLE", -32050),
    ("InvalidRequest", "PP_ERR_INVALID_REQUEST", -32600),
    ("MethodNotFound", "PP_ERR_METHOD_NOT_FOUND", -32601),
    ("InvalidParams", "PP_ERR_INVALID_PARAMS", -32602),
    ("InternalError", "PP_ERR_INTERNAL", -32603),
    ("ParseError", "PP_ERR_PARSE_ERROR", -32700),
    ("NullArgument", "PP_ERR_NULL_ARGUMENT", 1),
    ("BufferTooSmall", "PP_ERR_BUFFER_TOO_SMALL", 2),
    ("InvalidInput", "PP_ERR_INVALID_INPUT", 3),
    ("InvalidKey", "PP_ERR_INVALID_KEY", 4),
    ("InvalidStoreUrl", "PP_ERR_INVALID_STORE_URL", 5),
    ("LibraryPanic", "PP_ERR_PANIC", 6),
    ("PrivateTokenType", "PP_ERR_PRIVATE_TOKEN_TYPE", 7),
)
# END GENERATED result codes (make generated, from src/codes.rs; do not edit)

#: The pp_result values as an IntEnum (``ResultCode.PP_ERR_ALREADY_SPENT == -32021``).
ResultCode = enum.IntEnum(  # type: ignore[misc]
    "ResultCode", [("PP_OK", 0)] + [(c_name, value) for _, c_name, value in RESULT_CODES]
)


class PrivacyPassError(Exception):
    """A libprivacypass call failed. ``code`` is its ``pp_result`` value.

    ``message`` is the library's text for the code (``pp_result_str``), ``http_status`` and
    ``jsonrpc_code`` what a service answers a peer for it (``pp_result_http_status``,
    ``pp_result_jsonrpc_code``), ``c_name`` the header's name (``PP_ERR_...``) and ``function``
    the C function that returned it.
    """

    code: int = ResultCode["PP_ERR_INTERNAL"]
    c_name: str = "PP_ERR_INTERNAL"

    def __init__(self, detail: Optional[str] = None, *, code: Optional[int] = None,
                 function: Optional[str] = None) -> None:
        if code is not None:
            self.code = int(code)
            self.c_name = _C_NAMES.get(self.code, f"unknown pp_result {self.code}")
        self.function = function
        self.detail = detail
        text = self.message
        if detail:
            text = f"{text}: {detail}"
        if function:
            text = f"{function}: {text}"
        super().__init__(text)

    @property
    def message(self) -> str:
        """The library's description of ``code`` (``pp_result_str``): for the protocol errors
        the meaning column of the error table, e.g. "token already spent"."""
        text: bytes = lib.pp_result_str(self.code)
        return text.decode("utf-8", "replace")

    @property
    def http_status(self) -> int:
        """The HTTP status a service answers for this error (``pp_result_http_status``), e.g.
        403 for AlreadySpent; 500 for the library's own codes."""
        return int(lib.pp_result_http_status(self.code))

    @property
    def jsonrpc_code(self) -> int:
        """The JSON-RPC ``error.code`` a service answers (``pp_result_jsonrpc_code``): ``code``
        itself for the protocol errors, -32603 (internal error) for the library's own codes."""
        return int(lib.pp_result_jsonrpc_code(self.code))

    def __reduce__(self) -> Tuple[object, ...]:  # picklable, e.g. across multiprocessing
        return (_rebuild, (self.code, self.detail, self.function))


class ClosedHandleError(PrivacyPassError, ValueError):
    """A method was called on a handle (Verifier, Redeemer, ...) after its close().

    The C library was not called, so there is no ``pp_result`` of its own. It is a bug in the
    calling program, and it answers a peer what the library's own misuse codes answer, an
    internal error: ``code`` and ``jsonrpc_code`` are -32603, ``c_name`` is "PP_ERR_INTERNAL",
    ``http_status`` is 500; ``message`` is "use of a closed handle", ``function`` is None and
    ``detail`` names the handle's class. It is a PrivacyPassError, so that one ``except
    PrivacyPassError`` maps every failure of the binding, and a ValueError (the object is in the
    wrong state), but not an InternalError: the library did not fail.
    """

    @property
    def message(self) -> str:
        """Always "use of a closed handle" (``detail`` names the handle's class)."""
        return "use of a closed handle"

    def __reduce__(self) -> Tuple[object, ...]:
        return (type(self), (self.detail,))


_C_NAMES: Dict[int, str] = {value: c_name for _, c_name, value in RESULT_CODES}
_CLASSES: Dict[int, Type[PrivacyPassError]] = {}

# The library's own codes (the positive values) report bad arguments: they are ValueErrors
# too, all but a caught panic. The same rule writes the class stubs below (xtask).
for _name, _c_name, _value in RESULT_CODES:
    _value_error = _value > 0 and _c_name != "PP_ERR_PANIC"
    _bases: Tuple[type, ...] = (PrivacyPassError, ValueError) if _value_error else (
        PrivacyPassError,)
    _cls = type(_name, _bases, {
        "code": _value,
        "c_name": _c_name,
        "__module__": __name__,
        "__doc__": f"{_c_name} ({_value}): {lib.pp_result_str(_value).decode('utf-8', 'replace')}.",
    })
    _CLASSES[_value] = _cls
    globals()[_name] = _cls
del _name, _c_name, _value, _value_error, _bases, _cls


if TYPE_CHECKING:  # what the loop above makes, spelled out for type checkers (a test compares)
    # BEGIN GENERATED class stubs (make generated, from src/codes.rs; do not edit)
    class VerificationFailed(PrivacyPassError): ...
    class AlreadySpent(PrivacyPassError): ...
    class UnsupportedToken(PrivacyPassError): ...
    class UnknownIssuanceKey(PrivacyPassError): ...
    class UnprocessableBlindedToken(PrivacyPassError): ...
    class Unauthenticated(PrivacyPassError): ...
    class Forbidden(PrivacyPassError): ...
    class IdempotencyInFlight(PrivacyPassError): ...
    class IdempotencyMismatch(PrivacyPassError): ...
    class RateLimited(PrivacyPassError): ...
    class IssueAtRedemptionRoute(PrivacyPassError): ...
    class MethodNotAllowed(PrivacyPassError): ...
    class TooLarge(PrivacyPassError): ...
    class StoreUnavailable(PrivacyPassError): ...
    class InvalidRequest(PrivacyPassError): ...
    class MethodNotFound(PrivacyPassError): ...
    class InvalidParams(PrivacyPassError): ...
    class InternalError(PrivacyPassError): ...
    class ParseError(PrivacyPassError): ...
    class NullArgument(PrivacyPassError, ValueError): ...
    class BufferTooSmall(PrivacyPassError, ValueError): ...
    class InvalidInput(PrivacyPassError, ValueError): ...
    class InvalidKey(PrivacyPassError, ValueError): ...
    class InvalidStoreUrl(PrivacyPassError, ValueError): ...
    class LibraryPanic(PrivacyPassError): ...
    class PrivateTokenType(PrivacyPassError, ValueError): ...
    # END GENERATED class stubs (make generated, from src/codes.rs; do not edit)


def error_for(code: int, function: Optional[str] = None,
              detail: Optional[str] = None) -> PrivacyPassError:
    """The exception for a non-zero ``pp_result`` (the base class for an unknown code)."""
    cls = _CLASSES.get(int(code))
    if cls is None:
        return PrivacyPassError(detail, code=code, function=function)
    return cls(detail, function=function)


def _rebuild(code: int, detail: Optional[str], function: Optional[str]) -> PrivacyPassError:
    return error_for(code, function, detail)


def check(code: int, function: str) -> None:
    """Raises the exception for ``code`` unless it is PP_OK."""
    if code != 0:
        raise error_for(code, function)


__all__ = ["PrivacyPassError", "ClosedHandleError", "ResultCode", "RESULT_CODES", "error_for",
           "check"] + [name for name, _, _ in RESULT_CODES]
