"""Loading libprivacypass.so and declaring every function of include/privacypass.h to ctypes.

The library is found through, in order:

1. the environment variable ``PRIVACYPASS_LIBRARY``: the path of a libprivacypass.so;
2. ``libprivacypass.so`` inside this package's directory (the build copies it there before
   ``pip install``).

Every function gets its ``argtypes`` and ``restype`` here, from one table (``_PROTOTYPES``) that
mirrors the header; the handle types are distinct pointer types, so that passing one kind of
handle where another is expected is a ``ctypes.ArgumentError`` rather than undefined behaviour.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

LIBRARY_ENV = "PRIVACYPASS_LIBRARY"
LIBRARY_NAME = "libprivacypass.so"
BUNDLED_LIBRARY = Path(__file__).resolve().with_name(LIBRARY_NAME)


# Opaque handle types (struct pp_<thing>), each used only through its own pointer type.
class pp_verifier(ctypes.Structure):
    pass


class pp_redeemer(ctypes.Structure):
    pass


class pp_issuer(ctypes.Structure):
    pass


class pp_client(ctypes.Structure):
    pass


class pp_pending_token(ctypes.Structure):
    pass


class pp_pending_batch(ctypes.Structure):
    pass


class pp_pending_generic_batch(ctypes.Structure):
    pass


VerifierPtr = ctypes.POINTER(pp_verifier)
RedeemerPtr = ctypes.POINTER(pp_redeemer)
IssuerPtr = ctypes.POINTER(pp_issuer)
ClientPtr = ctypes.POINTER(pp_client)
PendingTokenPtr = ctypes.POINTER(pp_pending_token)
PendingBatchPtr = ctypes.POINTER(pp_pending_batch)
PendingGenericBatchPtr = ctypes.POINTER(pp_pending_generic_batch)

# Input buffers (const uint8_t * / const char *, with a length): bytes or None (NULL).
_IN = ctypes.c_char_p
_LEN = ctypes.c_size_t
# Output buffers: arrays of c_uint8 (uint8_t *out), c_char (char *out) or c_uint64
# (uint64_t *out), then cap (in elements) and out_len.
_OUT_U8 = ctypes.POINTER(ctypes.c_uint8)
_OUT_CHAR = ctypes.POINTER(ctypes.c_char)
_OUT_LEN = ctypes.POINTER(ctypes.c_size_t)
_OUT_U64 = ctypes.POINTER(ctypes.c_uint64)  # uint64_t *out: arrays of c_uint64
_RESULT = ctypes.c_int  # enum pp_result

_PROTOTYPES: Dict[str, Tuple[Any, List[Any]]] = {
    "pp_version": (ctypes.c_char_p, []),
    "pp_public_key_spki": (_RESULT, [_IN, _LEN, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_directory_public_keys": (_RESULT, [_IN, _LEN, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_pem_public_keys": (_RESULT, [_IN, _LEN, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_directory_token_keys": (
        _RESULT, [_IN, _LEN, ctypes.c_uint16, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_directory_not_before": (
        _RESULT, [_IN, _LEN, ctypes.c_uint16, _OUT_U64, _LEN, _OUT_LEN]),
    "pp_token_key_id_of_key": (_RESULT, [_IN, _LEN, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_token_challenge_digest": (_RESULT, [_IN, _LEN, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_token_key_id": (_RESULT, [_IN, _LEN, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_token_type": (_RESULT, [_IN, _LEN, ctypes.POINTER(ctypes.c_uint16)]),
    "pp_token_key_len": (ctypes.c_size_t, [ctypes.c_uint16]),
    "pp_redeem_response_result": (_RESULT, [ctypes.c_int, _IN, _LEN]),
    "pp_challenge_encode": (
        _RESULT,
        [ctypes.c_uint16, _IN, _LEN, _IN, _LEN, _IN, _LEN, _OUT_U8, _LEN, _OUT_LEN],
    ),
    "pp_challenge_www_authenticate": (
        _RESULT,
        [_IN, _LEN, _IN, _LEN, ctypes.POINTER(ctypes.c_uint64), _OUT_CHAR, _LEN, _OUT_LEN],
    ),
    "pp_authorization_encode": (_RESULT, [_IN, _LEN, _OUT_CHAR, _LEN, _OUT_LEN]),
    "pp_authorization_parse": (_RESULT, [_IN, _LEN, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_client_new": (_RESULT, [_IN, _LEN, ctypes.POINTER(ClientPtr)]),
    "pp_client_new_voprf": (_RESULT, [ctypes.c_uint16, _IN, _LEN, ctypes.POINTER(ClientPtr)]),
    "pp_client_free": (None, [ClientPtr]),
    "pp_client_request": (_RESULT, [ClientPtr, _IN, _LEN, ctypes.POINTER(PendingTokenPtr)]),
    "pp_client_request_with_randomness": (
        _RESULT,
        [ClientPtr, _IN, _LEN, _IN, _LEN, _IN, _LEN, _IN, _LEN, ctypes.POINTER(PendingTokenPtr)],
    ),
    "pp_pending_token_free": (None, [PendingTokenPtr]),
    "pp_pending_token_request": (_RESULT, [PendingTokenPtr, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_pending_token_finalize": (
        _RESULT,
        [PendingTokenPtr, _IN, _LEN, _OUT_U8, _LEN, _OUT_LEN],
    ),
    "pp_issuer_new_from_pem": (_RESULT, [_IN, _LEN, ctypes.POINTER(IssuerPtr)]),
    "pp_issuer_new_from_scalar": (
        _RESULT, [ctypes.c_uint16, _IN, _LEN, ctypes.POINTER(IssuerPtr)]),
    "pp_issuer_generate_voprf": (_RESULT, [ctypes.c_uint16, ctypes.POINTER(IssuerPtr)]),
    "pp_issuer_token_type": (_RESULT, [IssuerPtr, ctypes.POINTER(ctypes.c_uint16)]),
    "pp_issuer_generate": (_RESULT, [ctypes.POINTER(IssuerPtr)]),
    "pp_issuer_free": (None, [IssuerPtr]),
    "pp_issuer_public_key": (_RESULT, [IssuerPtr, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_issuer_token_key_id": (_RESULT, [IssuerPtr, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_issuer_issue": (_RESULT, [IssuerPtr, _IN, _LEN, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_issuer_issue_blinded": (
        _RESULT,
        [IssuerPtr, _IN, _LEN, _IN, _LEN, _OUT_U8, _LEN, _OUT_LEN],
    ),
    "pp_client_request_amortized": (
        _RESULT, [ClientPtr, _IN, _LEN, _LEN, ctypes.POINTER(PendingBatchPtr)]),
    "pp_client_request_amortized_with_randomness": (
        _RESULT,
        [ClientPtr, _IN, _LEN, _IN, _LEN, _IN, _LEN, ctypes.POINTER(PendingBatchPtr)],
    ),
    "pp_pending_batch_free": (None, [PendingBatchPtr]),
    "pp_pending_batch_request": (_RESULT, [PendingBatchPtr, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_pending_batch_finalize": (
        _RESULT, [PendingBatchPtr, _IN, _LEN, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_pending_generic_batch_new": (
        _RESULT,
        [ctypes.POINTER(PendingTokenPtr), _LEN, ctypes.POINTER(PendingGenericBatchPtr)],
    ),
    "pp_pending_generic_batch_free": (None, [PendingGenericBatchPtr]),
    "pp_pending_generic_batch_request": (
        _RESULT, [PendingGenericBatchPtr, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_pending_generic_batch_finalize": (
        _RESULT,
        [PendingGenericBatchPtr, _IN, _LEN, _OUT_U8, _LEN, _OUT_LEN, _OUT_LEN, _LEN],
    ),
    "pp_issuer_issue_amortized": (
        _RESULT, [IssuerPtr, _IN, _LEN, _LEN, _OUT_U8, _LEN, _OUT_LEN]),
    "pp_issuer_issue_generic": (
        _RESULT,
        [ctypes.POINTER(IssuerPtr), _LEN, _IN, _LEN, _LEN, _LEN, _OUT_U8, _LEN, _OUT_LEN],
    ),
    "pp_result_str": (ctypes.c_char_p, [ctypes.c_int]),
    "pp_result_jsonrpc_code": (ctypes.c_int, [ctypes.c_int]),
    "pp_result_http_status": (ctypes.c_int, [ctypes.c_int]),
    "pp_verifier_new_from_spki": (_RESULT, [_IN, _LEN, ctypes.POINTER(VerifierPtr)]),
    "pp_verifier_new_from_pem": (_RESULT, [_IN, _LEN, ctypes.POINTER(VerifierPtr)]),
    "pp_verifier_new_from_directory": (_RESULT, [_IN, _LEN, ctypes.POINTER(VerifierPtr)]),
    "pp_verifier_free": (None, [VerifierPtr]),
    "pp_verifier_verify": (_RESULT, [VerifierPtr, _IN, _LEN, _IN, _LEN]),
    "pp_verifier_verify_authorization": (_RESULT, [VerifierPtr, _IN, _LEN, _IN, _LEN]),
    "pp_redeemer_new": (_RESULT, [VerifierPtr, ctypes.c_char_p, ctypes.POINTER(RedeemerPtr)]),
    "pp_redeemer_new_from_issuer": (
        _RESULT, [IssuerPtr, ctypes.c_char_p, ctypes.POINTER(RedeemerPtr)]),
    "pp_redeemer_set_keys": (_RESULT, [RedeemerPtr, VerifierPtr]),
    "pp_redeemer_free": (None, [RedeemerPtr]),
    "pp_redeemer_redeem": (_RESULT, [RedeemerPtr, _IN, _LEN, _IN, _LEN]),
    "pp_redeemer_redeem_authorization": (_RESULT, [RedeemerPtr, _IN, _LEN, _IN, _LEN]),
}


def _missing_library_message(detail: str) -> str:
    return (
        f"libprivacypass: {detail}. Either set the environment variable {LIBRARY_ENV} to the "
        f"path of libprivacypass.so (e.g. ~/.cache/privacypass/target/release/libprivacypass.so, "
        f"built by `make ffi`), or place a copy of it at {BUNDLED_LIBRARY} before installing "
        f"the package (`make test-python` does)."
    )


def library_path() -> str:
    """The path of the libprivacypass.so this process loads (or would load)."""
    configured = os.environ.get(LIBRARY_ENV)
    if configured:
        if not os.path.isfile(configured):
            raise ImportError(_missing_library_message(f"{LIBRARY_ENV}={configured!r} is not a file"))
        return configured
    if BUNDLED_LIBRARY.is_file():
        return str(BUNDLED_LIBRARY)
    raise ImportError(
        _missing_library_message(f"{LIBRARY_ENV} is not set and {BUNDLED_LIBRARY} does not exist")
    )


def _load() -> ctypes.CDLL:
    path = library_path()
    try:
        # CDLL (not PyDLL): every call releases the GIL, so threads run C calls in parallel.
        library = ctypes.CDLL(path)
    except OSError as err:
        raise ImportError(_missing_library_message(f"cannot load {path}: {err}")) from err
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            function = getattr(library, name)
        except AttributeError as err:
            raise ImportError(
                f"libprivacypass: {path} has no {name}: it is not the libprivacypass this "
                f"binding was written for"
            ) from err
        function.restype = restype
        function.argtypes = argtypes
    return library


lib = _load()
