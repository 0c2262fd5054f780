"""Privacy Pass (RFC 9576-9578) tokens: libprivacypass from Python.

Token types 0x0002 (Blind RSA 2048, publicly verifiable), 0x0001 (VOPRF P-384) and 0x0005
(VOPRF ristretto255), the last two privately verifiable: only the issuer's private key
verifies their tokens.

    Issuer      an issuing key (RSA-2048 or VOPRF): TokenRequest -> TokenResponse
    Client      a client of one issuer key: TokenChallenge -> PendingToken
    PendingToken  the TokenRequest to send, and finalize(TokenResponse) -> Token
    PendingBatch  an amortized batch (types 1 and 5, Client.request_amortized): its request,
                and finalize(response) -> [Token, ...]; Issuer.issue_amortized answers it
    PendingGenericBatch  a generic batch of PendingTokens of any types: its request, and
                finalize(response) -> [Token or None, ...]; issue_generic answers it
    Verifier    the public keys of one or more type 2 issuers: verify a Token (or an
                Authorization value)
    Redeemer    a Verifier (or, for every type, an Issuer) plus a spend store: each Token is
                accepted once

and the header helpers ``encode_challenge``, ``www_authenticate``, ``encode_authorization``,
``parse_authorization``, and the directory helpers ``directory_token_keys`` and
``directory_not_before``. ``DirectoryVerifier`` (``privacypass.refresher``) keeps a Verifier,
and the Redeemers it makes, current from an issuer's directory URL. Binary values are
``bytes`` in and out; header values are ``str``. Failures raise a subclass of
:class:`PrivacyPassError` (one per ``pp_result`` code).

Every handle is immutable (but for ``Redeemer.set_keys``, which swaps a redeemer's keys
atomically) and may be shared by any number of threads (the C library is reference-counted
and lock-free for reading; ctypes releases the GIL during each call). Close a
handle with ``close()`` or a ``with`` block; an object that is garbage-collected is closed too.
Using a closed handle raises :class:`ClosedHandleError` (a PrivacyPassError); closing a handle
while other threads are inside a call on it is safe (the C handle is freed when the last of
those calls returns).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Any, Callable, Iterable, List, Optional, Sequence, Type, TypeVar, Union

from . import errors as _errors
from ._native import (
    BUNDLED_LIBRARY,
    LIBRARY_ENV,
    ClientPtr,
    IssuerPtr,
    PendingBatchPtr,
    PendingGenericBatchPtr,
    PendingTokenPtr,
    RedeemerPtr,
    VerifierPtr,
    lib as _lib,
    library_path,
)
from .errors import (  # one class per pp_result code, generated from errors.RESULT_CODES
    RESULT_CODES, ClosedHandleError, PrivacyPassError, ResultCode, VerificationFailed, AlreadySpent,
    UnsupportedToken, UnknownIssuanceKey, UnprocessableBlindedToken, Unauthenticated, Forbidden,
    IdempotencyInFlight, IdempotencyMismatch, RateLimited, IssueAtRedemptionRoute, MethodNotAllowed,
    TooLarge, StoreUnavailable, InvalidRequest, MethodNotFound, InvalidParams, InternalError,
    ParseError, NullArgument, BufferTooSmall, InvalidInput, InvalidKey, InvalidStoreUrl,
    LibraryPanic, PrivateTokenType,
)
from .errors import check as _check

__version__ = "0.1.0"

# The constants of include/privacypass.h.
VERSION_MAJOR = 0
VERSION_MINOR = 1
VERSION_PATCH = 0
VERSION = f"{VERSION_MAJOR}.{VERSION_MINOR}.{VERSION_PATCH}"  # PP_VERSION
TOKEN_TYPE_BLIND_RSA = 2
TOKEN_LEN = 354
TOKEN_REQUEST_LEN = 259
TOKEN_RESPONSE_LEN = 256
BLINDED_MSG_LEN = 256
TOKEN_KEY_ID_LEN = 32
PUBLIC_KEY_LEN = 342
NONCE_LEN = 32
SALT_LEN = 48
REDEMPTION_CONTEXT_LEN = 32
# The privately verifiable types (VOPRF): their token types and sizes. Issuer.from_scalar,
# Issuer.generate_voprf, Client.voprf and Redeemer.from_issuer serve them.
TOKEN_TYPE_VOPRF_P384 = 1
TOKEN_TYPE_VOPRF_RISTRETTO255 = 5
VOPRF_P384_PUBLIC_KEY_LEN = 49
VOPRF_P384_SCALAR_LEN = 48
VOPRF_P384_TOKEN_REQUEST_LEN = 52
VOPRF_P384_TOKEN_RESPONSE_LEN = 145
VOPRF_P384_TOKEN_LEN = 146
VOPRF_RISTRETTO255_PUBLIC_KEY_LEN = 32
VOPRF_RISTRETTO255_SCALAR_LEN = 32
VOPRF_RISTRETTO255_TOKEN_REQUEST_LEN = 35
VOPRF_RISTRETTO255_TOKEN_RESPONSE_LEN = 96
VOPRF_RISTRETTO255_TOKEN_LEN = 162

BytesLike = Union[bytes, bytearray, memoryview]
Text = Union[str, bytes]

_BUFFER_TOO_SMALL = int(ResultCode["PP_ERR_BUFFER_TOO_SMALL"])

# Batched issuance (draft-ietf-privacypass-batched-tokens): the most token requests one
# amortized batch may hold (pp_client_request_amortized), and the issuer's default bound.
MAX_AMORTIZED_BATCH = 1024
DEFAULT_MAX_BATCH_TOKENS = 100


def library_version() -> str:
    """The version of the libprivacypass actually loaded (``pp_version``), e.g. "0.1.0"."""
    version: bytes = _lib.pp_version()
    return version.decode("ascii")


# ---------------------------------------------------------------------------------------------
# Arguments and output buffers


def _bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def _optional_bytes(value: Any, what: str) -> Optional[bytes]:
    return None if value is None else _bytes(value, what)


def _text(value: Any, what: str) -> bytes:
    """A header value, PEM or JSON text: str (UTF-8 encoded) or bytes as they are."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def _len(value: Optional[bytes]) -> int:
    return 0 if value is None else len(value)


def _token_type(value: Any) -> int:
    """A token type argument: an int that fits the C uint16_t (which ctypes would truncate
    silently). Whether the library serves that type is the library's answer
    (UnsupportedToken)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"token_type must be int, not {type(value).__name__}")
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"token_type {value} is not a uint16")
    return value


def _size(value: Any, what: str) -> int:
    """A count argument: an int that fits the C size_t (ctypes would wrap a negative one)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be int, not {type(value).__name__}")
    if not 0 <= value < 2**64:
        raise ValueError(f"{what} {value} is not a size_t")
    return value


def _store_url(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"store_url must be str, not {type(value).__name__}")
    if "\0" in value:
        raise ValueError("store_url contains a NUL character")
    return value.encode("utf-8")


def _output(function: str, call: Callable[..., int], cap: int,
            element: Type[Any] = ctypes.c_uint8) -> bytes:
    """Runs ``call(out, cap, out_len)`` with a caller-owned buffer of ``cap`` bytes; when the
    library answers PP_ERR_BUFFER_TOO_SMALL it has written the size needed to out_len, and the
    call is made again with a buffer of that size."""
    out_len = ctypes.c_size_t(0)
    for _ in range(3):
        buffer = (element * cap)()
        rc = call(buffer, cap, ctypes.byref(out_len))
        if rc == _BUFFER_TOO_SMALL and out_len.value > cap:
            cap = out_len.value
            continue
        _check(rc, function)
        return ctypes.string_at(buffer, out_len.value)
    raise _errors.error_for(_BUFFER_TOO_SMALL, function)


# ---------------------------------------------------------------------------------------------
# Handles


_H = TypeVar("_H", bound="_Handle")


class _Borrow:
    """``with handle._borrow() as ptr``: the C pointer, kept alive until the block ends."""

    __slots__ = ("_handle",)

    def __init__(self, handle: "_Handle") -> None:
        self._handle = handle

    def __enter__(self) -> Any:
        return self._handle._acquire()

    def __exit__(self, *exc: Any) -> None:
        self._handle._release()


class _Handle:
    """A C handle: freed once, by close(), the end of a ``with`` block or garbage collection."""

    _free: Callable[[Any], None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"{type(self).__name__} is made by its class methods")

    @classmethod
    def _adopt(cls: Type[_H], ptr: Any) -> _H:
        self = cls.__new__(cls)
        self._set_pointer(ptr)
        return self

    def _set_pointer(self, ptr: Any) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._pending_free: Any = None
        self._ptr: Any = ptr

    def _acquire(self) -> Any:
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                raise ClosedHandleError(f"{type(self).__name__} is closed")
            self._users += 1
            return ptr

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            ptr = None
            if self._users == 0 and self._pending_free is not None:
                ptr, self._pending_free = self._pending_free, None
        if ptr is not None:
            type(self)._free(ptr)

    def _borrow(self) -> _Borrow:
        return _Borrow(self)

    @property
    def closed(self) -> bool:
        """True once the C handle is released (by close(), the end of a ``with`` block, or
        garbage collection): every method then raises ClosedHandleError."""
        return getattr(self, "_ptr", None) is None

    def close(self) -> None:
        """Frees the C handle. Idempotent. Calls in progress on other threads finish first."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ never completed
            return
        with lock:
            ptr, self._ptr = self._ptr, None
            if ptr is None:
                return
            if self._users:
                self._pending_free = ptr  # the last call in progress frees it
                return
        type(self)._free(ptr)

    def __enter__(self: _H) -> _H:
        if self.closed:
            raise ClosedHandleError(f"{type(self).__name__} is closed")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing sensible left to do
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<privacypass.{type(self).__name__} {state}>"

    def __reduce__(self) -> Any:
        raise TypeError(f"{type(self).__name__} holds a C handle and cannot be pickled")


class Verifier(_Handle):
    """The public keys of one or more issuers; verifies tokens without recording them.

    Made by :meth:`from_spki`, :meth:`from_pem` or :meth:`from_directory`.
    """

    _free = staticmethod(_lib.pp_verifier_free)

    @classmethod
    def from_spki(cls, spki: BytesLike) -> "Verifier":
        """One issuer key as a SubjectPublicKeyInfo, DER (RSASSA-PSS as in RFC 9578, or plain
        rsaEncryption): the ``token-key`` of a challenge or directory, decoded. Raises
        InvalidKey unless it is RSA-2048, e = 65537."""
        data = _bytes(spki, "spki")
        out = VerifierPtr()
        _check(_lib.pp_verifier_new_from_spki(data, len(data), ctypes.byref(out)),
               "pp_verifier_new_from_spki")
        return cls._adopt(out)

    @classmethod
    def from_pem(cls, pem: Text) -> "Verifier":
        """Every ``-----BEGIN PUBLIC KEY-----`` block of a PEM text (at least one)."""
        data = _text(pem, "pem")
        out = VerifierPtr()
        _check(_lib.pp_verifier_new_from_pem(data, len(data), ctypes.byref(out)),
               "pp_verifier_new_from_pem")
        return cls._adopt(out)

    @classmethod
    def from_directory(cls, directory_json: Text) -> "Verifier":
        """The token type 2 keys of an RFC 9578 issuer directory (the JSON text of
        ``/.well-known/private-token-issuer-directory``), each valid from its not-before."""
        data = _text(directory_json, "directory_json")
        out = VerifierPtr()
        _check(_lib.pp_verifier_new_from_directory(data, len(data), ctypes.byref(out)),
               "pp_verifier_new_from_directory")
        return cls._adopt(out)

    def verify(self, token: BytesLike, challenge: Optional[BytesLike] = None) -> None:
        """Verifies an encoded Token now; ``challenge`` is the encoded TokenChallenge it must be
        bound to (None: any). Raises VerificationFailed, InvalidParams for bytes that are not a
        well-formed token (truncated, too long, trailing bytes), PrivateTokenType for a token
        of type 1 or 5 (only its issuer's private key verifies it: see
        :meth:`Redeemer.from_issuer`) or UnsupportedToken for a token of another type."""
        data = _bytes(token, "token")
        expected = _optional_bytes(challenge, "challenge")
        with self._borrow() as ptr:
            rc = _lib.pp_verifier_verify(ptr, data, len(data), expected, _len(expected))
        _check(rc, "pp_verifier_verify")

    def verify_authorization(self, authorization: Text,
                             challenge: Optional[BytesLike] = None) -> None:
        """As :meth:`verify`, for an ``Authorization`` value (``PrivateToken token="..."``);
        a malformed value raises InvalidParams, as a malformed token in it does."""
        data = _text(authorization, "authorization")
        expected = _optional_bytes(challenge, "challenge")
        with self._borrow() as ptr:
            rc = _lib.pp_verifier_verify_authorization(ptr, data, len(data), expected,
                                                       _len(expected))
        _check(rc, "pp_verifier_verify_authorization")


class Redeemer(_Handle):
    """A Verifier plus a spend store: :meth:`redeem` accepts each token once.

    ``Redeemer(verifier, store_url)`` verifies type 2 tokens with public keys;
    :meth:`from_issuer` verifies with an issuer's key, which is how the privately verifiable
    types (1 and 5) are redeemed.

    ``store_url`` names the store; there is no default, since the store decides whether a token
    is spent once per process, per host or everywhere:

    - ``memory:`` / ``memory:CAPACITY``: this process only, bounded (default 1,000,000 spends;
      when full, new spends raise StoreUnavailable, old ones are never forgotten). The spends
      belong to the process that made the redeemer: in a child of ``os.fork()`` (a
      ``multiprocessing`` worker started by fork, a pre-forking server) every redeem raises
      StoreUnavailable, since the child's copy would accept each token once more. Make the
      redeemer in the process that redeems;
    - ``rocksdb:PATH``: embedded RocksDB, durable; one process at a time per PATH. RocksDB runs
      threads of its own, which fork does not copy: make the redeemer after forking, in the
      process that redeems, and never use one made before the fork in a child;
    - ``redis://[[USER]:PASSWORD@]HOST:PORT[/DB]`` or ``redis+cluster://H1:P1,H2:P2,...``, both
      with optional ``?pool=N&timeout_ms=MS``: Redis or Valkey, standalone or cluster, shared
      with every other redeemer on the same store (daemons, other hosts), so that a token is
      spent once among all of them. Run Redis with ``appendonly yes`` and ``appendfsync always``
      for spends to survive its crash; on a standalone primary ``&wait=N&wait_timeout_ms=MS``
      acknowledges a spend only once ``WAIT`` reports it on N replicas (else
      StoreUnavailable). Connections are made on first use, by the process that
      redeems: a redeemer made before a fork works in the child.

    Another form raises InvalidStoreUrl; a store that cannot be opened or reached raises
    StoreUnavailable. The redeemer keeps its own reference to the verifier's keys: the Verifier
    may be closed first.
    """

    _free = staticmethod(_lib.pp_redeemer_free)

    def __init__(self, verifier: Verifier, store_url: str) -> None:
        if not isinstance(verifier, Verifier):
            raise TypeError(f"verifier must be a Verifier, not {type(verifier).__name__}")
        url = _store_url(store_url)
        out = RedeemerPtr()
        with verifier._borrow() as ptr:
            rc = _lib.pp_redeemer_new(ptr, url, ctypes.byref(out))
        _check(rc, "pp_redeemer_new")
        self._set_pointer(out)

    @classmethod
    def from_issuer(cls, issuer: "Issuer", store_url: str) -> "Redeemer":
        """A redeemer verifying with ``issuer``'s key, spends recorded in the store
        ``store_url`` names (the URLs above). For a VOPRF issuer (token type 1 or 5) this is how
        an origin redeems its tokens: only the private key verifies them. For an RSA issuer it
        verifies with the public key, as ``Redeemer(Verifier.from_spki(issuer.public_key),
        store_url)`` does. The redeemer keeps its own reference to the key: the Issuer may be
        closed first. Raises InvalidStoreUrl or StoreUnavailable as the constructor does."""
        if not isinstance(issuer, Issuer):
            raise TypeError(f"issuer must be an Issuer, not {type(issuer).__name__}")
        url = _store_url(store_url)
        out = RedeemerPtr()
        with issuer._borrow() as ptr:
            rc = _lib.pp_redeemer_new_from_issuer(ptr, url, ctypes.byref(out))
        _check(rc, "pp_redeemer_new_from_issuer")
        return cls._adopt(out)

    def redeem(self, token: BytesLike, challenge: Optional[BytesLike] = None) -> None:
        """Verifies the token, then records its spend. Raises AlreadySpent for every attempt
        after the first accepted one, StoreUnavailable when nothing could be recorded (the
        token may be redeemed later), VerificationFailed, InvalidParams (not a well-formed
        token), UnsupportedToken (a token of another type) or PrivateTokenType (a type 1 or 5
        token given to a redeemer of public keys: use :meth:`from_issuer`)."""
        data = _bytes(token, "token")
        expected = _optional_bytes(challenge, "challenge")
        with self._borrow() as ptr:
            rc = _lib.pp_redeemer_redeem(ptr, data, len(data), expected, _len(expected))
        _check(rc, "pp_redeemer_redeem")

    def redeem_authorization(self, authorization: Text,
                             challenge: Optional[BytesLike] = None) -> None:
        """As :meth:`redeem`, for an ``Authorization`` value (malformed: InvalidParams)."""
        data = _text(authorization, "authorization")
        expected = _optional_bytes(challenge, "challenge")
        with self._borrow() as ptr:
            rc = _lib.pp_redeemer_redeem_authorization(ptr, data, len(data), expected,
                                                       _len(expected))
        _check(rc, "pp_redeemer_redeem_authorization")

    def set_keys(self, verifier: Verifier) -> None:
        """Replaces the keys the redeemer verifies with by ``verifier``'s, all at once: a
        redeem that began before verifies with the old keys, every one after with the new, and
        none sees a mix of the two. The store and its spends stay: a token spent before is
        still spent (AlreadySpent), whichever keys verify it now. This is how a long-lived
        redeemer follows its issuer's directory (:meth:`Verifier.from_directory` on each new
        body, then this call; :meth:`DirectoryVerifier.redeemer` does it). The redeemer keeps
        its own reference to the keys: the Verifier may be closed after.

        Raises InvalidKey for a redeemer made by :meth:`from_issuer` from a VOPRF issuer
        (type 1 or 5: public keys cannot replace its private key), which keeps its keys;
        ClosedHandleError when the redeemer or the verifier is closed."""
        if not isinstance(verifier, Verifier):
            raise TypeError(f"verifier must be a Verifier, not {type(verifier).__name__}")
        with self._borrow() as ptr, verifier._borrow() as keys:
            rc = _lib.pp_redeemer_set_keys(ptr, keys)
        _check(rc, "pp_redeemer_set_keys")


class Issuer(_Handle):
    """An issuer with one private key: RSA-2048 (token type 2), made by :meth:`from_pem` or
    :meth:`generate`, or VOPRF (token type 1, P-384, or 5, ristretto255), made by
    :meth:`from_scalar`, :meth:`generate_voprf` or :meth:`from_pem` (a VOPRF key file).
    :attr:`token_type` tells which."""

    _free = staticmethod(_lib.pp_issuer_free)

    @classmethod
    def from_pem(cls, pem: Text) -> "Issuer":
        """An RSA-2048 private key in PEM, PKCS#8 or PKCS#1, e = 65537; or a VOPRF key file
        (``PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY``, type 1, or ``PRIVACYPASS VOPRF
        RISTRETTO255-SHA512 PRIVATE KEY``, type 5). Anything else raises InvalidKey."""
        data = _text(pem, "pem")
        out = IssuerPtr()
        _check(_lib.pp_issuer_new_from_pem(data, len(data), ctypes.byref(out)),
               "pp_issuer_new_from_pem")
        return cls._adopt(out)

    @classmethod
    def generate(cls) -> "Issuer":
        """A fresh RSA-2048 key (tests and examples; a service loads its PEM)."""
        out = IssuerPtr()
        _check(_lib.pp_issuer_generate(ctypes.byref(out)), "pp_issuer_generate")
        return cls._adopt(out)

    @classmethod
    def from_scalar(cls, token_type: int, scalar: BytesLike) -> "Issuer":
        """A VOPRF private key: ``token_type`` TOKEN_TYPE_VOPRF_P384 or
        TOKEN_TYPE_VOPRF_RISTRETTO255 and the RFC 9497 SerializeScalar of the key
        (VOPRF_P384_SCALAR_LEN bytes big-endian, VOPRF_RISTRETTO255_SCALAR_LEN bytes
        little-endian: the vectors' ``skS``). Raises UnsupportedToken for another token type,
        InvalidKey when the bytes are not a canonical nonzero scalar of that group."""
        kind = _token_type(token_type)
        data = _bytes(scalar, "scalar")
        out = IssuerPtr()
        _check(_lib.pp_issuer_new_from_scalar(kind, data, len(data), ctypes.byref(out)),
               "pp_issuer_new_from_scalar")
        return cls._adopt(out)

    @classmethod
    def generate_voprf(cls, token_type: int) -> "Issuer":
        """A fresh VOPRF key of ``token_type`` (TOKEN_TYPE_VOPRF_P384 or
        TOKEN_TYPE_VOPRF_RISTRETTO255), for tests and examples. Raises UnsupportedToken for
        another token type (:meth:`generate` makes type 2 keys)."""
        kind = _token_type(token_type)
        out = IssuerPtr()
        _check(_lib.pp_issuer_generate_voprf(kind, ctypes.byref(out)), "pp_issuer_generate_voprf")
        return cls._adopt(out)

    @property
    def token_type(self) -> int:
        """The token type the key issues: TOKEN_TYPE_BLIND_RSA (2), TOKEN_TYPE_VOPRF_P384 (1)
        or TOKEN_TYPE_VOPRF_RISTRETTO255 (5)."""
        out = ctypes.c_uint16(0)
        with self._borrow() as ptr:
            rc = _lib.pp_issuer_token_type(ptr, ctypes.byref(out))
        _check(rc, "pp_issuer_token_type")
        return int(out.value)

    @property
    def public_key(self) -> bytes:
        """The ``token-key``: for type 2 the RFC 9578 SubjectPublicKeyInfo (DER,
        PUBLIC_KEY_LEN bytes), what :class:`Client` and :meth:`Verifier.from_spki` take; for a
        VOPRF key the serialized public element (VOPRF_P384_PUBLIC_KEY_LEN or
        VOPRF_RISTRETTO255_PUBLIC_KEY_LEN bytes), what :meth:`Client.voprf` takes."""
        with self._borrow() as ptr:
            return _output("pp_issuer_public_key",
                           lambda out, cap, n: _lib.pp_issuer_public_key(ptr, out, cap, n),
                           PUBLIC_KEY_LEN)

    @property
    def token_key_id(self) -> bytes:
        """SHA-256 of :attr:`public_key` (TOKEN_KEY_ID_LEN bytes): the JSON-RPC ``key-id``."""
        with self._borrow() as ptr:
            return _output("pp_issuer_token_key_id",
                           lambda out, cap, n: _lib.pp_issuer_token_key_id(ptr, out, cap, n),
                           TOKEN_KEY_ID_LEN)

    def issue(self, token_request: BytesLike) -> bytes:
        """RFC 9578 issuance: encoded TokenRequest in, encoded TokenResponse out
        (TOKEN_RESPONSE_LEN bytes for type 2; VOPRF_P384_TOKEN_RESPONSE_LEN or
        VOPRF_RISTRETTO255_TOKEN_RESPONSE_LEN, the evaluated element and its DLEQ proof, for a
        VOPRF key). Raises UnprocessableBlindedToken for a malformed request, one of another
        token type or one for another key."""
        data = _bytes(token_request, "token_request")
        with self._borrow() as ptr:
            return _output("pp_issuer_issue",
                           lambda out, cap, n: _lib.pp_issuer_issue(ptr, data, len(data), out,
                                                                    cap, n),
                           TOKEN_RESPONSE_LEN)

    def issue_blinded(self, key_id: BytesLike, blinded_token: BytesLike) -> bytes:
        """The JSON-RPC ``issue`` form: the full token_key_id and the bare blinded message (or a
        whole TokenRequest) in, the blind signature out. Raises UnknownIssuanceKey or
        UnprocessableBlindedToken."""
        kid = _bytes(key_id, "key_id")
        data = _bytes(blinded_token, "blinded_token")
        with self._borrow() as ptr:
            return _output("pp_issuer_issue_blinded",
                           lambda out, cap, n: _lib.pp_issuer_issue_blinded(
                               ptr, kid, len(kid), data, len(data), out, cap, n),
                           TOKEN_RESPONSE_LEN)

    def issue_amortized(self, request: BytesLike,
                        max_tokens: int = DEFAULT_MAX_BATCH_TOKENS) -> bytes:
        """Amortized batched issuance (VOPRF keys, types 1 and 5): an encoded
        AmortizedBatchTokenRequest (:attr:`PendingBatch.token_request`) of at most
        ``max_tokens`` blinded elements in, the encoded AmortizedBatchTokenResponse out (every
        element evaluated, one DLEQ proof for all of them).

        Raises TooLarge (HTTP 413) for a batch of more than ``max_tokens`` elements, refused
        before any evaluation; UnprocessableBlindedToken for a malformed batch (truncated,
        trailing bytes, no elements, ...), one of another token type than the key (an RSA
        issuer serves none), one for another key, or an element not in the group."""
        data = _bytes(request, "request")
        limit = _size(max_tokens, "max_tokens")
        with self._borrow() as ptr:
            return _output("pp_issuer_issue_amortized",
                           lambda out, cap, n: _lib.pp_issuer_issue_amortized(
                               ptr, data, len(data), limit, out, cap, n),
                           len(data) + 128)


class PendingToken(_Handle):
    """A token request on its way to the issuer, with the secrets that finalizing needs (the
    blinding secret is wiped when the handle is closed). Made by :meth:`Client.request`."""

    _free = staticmethod(_lib.pp_pending_token_free)

    @property
    def token_request(self) -> bytes:
        """The encoded TokenRequest to send to the issuer (TOKEN_REQUEST_LEN bytes for type 2,
        VOPRF_P384_TOKEN_REQUEST_LEN or VOPRF_RISTRETTO255_TOKEN_REQUEST_LEN)."""
        with self._borrow() as ptr:
            return _output("pp_pending_token_request",
                           lambda out, cap, n: _lib.pp_pending_token_request(ptr, out, cap, n),
                           TOKEN_REQUEST_LEN)

    def finalize(self, token_response: BytesLike) -> bytes:
        """The issuer's encoded TokenResponse in, the encoded Token (TOKEN_LEN bytes for type
        2, VOPRF_P384_TOKEN_LEN or VOPRF_RISTRETTO255_TOKEN_LEN) out, verified against the
        issuer key (for types 1 and 5: the issuer's DLEQ proof, before anything is unblinded).
        Raises InvalidInput for a response of the wrong length, VerificationFailed when it does
        not finalize into a valid token."""
        data = _bytes(token_response, "token_response")
        with self._borrow() as ptr:
            return _output("pp_pending_token_finalize",
                           lambda out, cap, n: _lib.pp_pending_token_finalize(
                               ptr, data, len(data), out, cap, n),
                           TOKEN_LEN)


def _split(tokens: bytes, count: int, function: str) -> List[bytes]:
    size, rest = divmod(len(tokens), count) if count else (0, len(tokens))
    if rest or not size:
        raise _errors.error_for(int(ResultCode["PP_ERR_INTERNAL"]), function,
                                f"{len(tokens)} bytes are not {count} tokens")
    return [tokens[i * size:(i + 1) * size] for i in range(count)]


class PendingBatch(_Handle):
    """An amortized batch on its way to a VOPRF issuer (token type 1 or 5): N token requests
    for one challenge and one key, with the secrets that finalizing needs (the blinds are wiped
    when the handle is closed). Made by :meth:`Client.request_amortized`. May be finalized
    more than once, from any thread."""

    _free = staticmethod(_lib.pp_pending_batch_free)
    _count: int

    @classmethod
    def _adopt_batch(cls, ptr: Any, count: int) -> "PendingBatch":
        self = cls._adopt(ptr)
        self._count = count
        return self

    def __len__(self) -> int:
        """N, the number of token requests (and of the tokens :meth:`finalize` answers)."""
        return self._count

    @property
    def token_request(self) -> bytes:
        """The encoded AmortizedBatchTokenRequest to send to the issuer (``token_type ||
        truncated_token_key_id || blinded_msgs<V>``), for :meth:`Issuer.issue_amortized`."""
        with self._borrow() as ptr:
            return _output("pp_pending_batch_request",
                           lambda out, cap, n: _lib.pp_pending_batch_request(ptr, out, cap, n),
                           3 + 4 + self._count * VOPRF_P384_PUBLIC_KEY_LEN)

    def finalize(self, response: BytesLike) -> List[bytes]:
        """The issuer's encoded AmortizedBatchTokenResponse in, the batch's N encoded Tokens
        out, in the request's order (each VOPRF_P384_TOKEN_LEN or VOPRF_RISTRETTO255_TOKEN_LEN
        bytes). The batch's one DLEQ proof is verified over every element before anything is
        unblinded: every token comes out, or none. Raises InvalidInput for a malformed
        response or one with another number of elements than the request, VerificationFailed
        when the proof does not verify."""
        data = _bytes(response, "response")
        with self._borrow() as ptr:
            tokens = _output("pp_pending_batch_finalize",
                             lambda out, cap, n: _lib.pp_pending_batch_finalize(
                                 ptr, data, len(data), out, cap, n),
                             self._count * VOPRF_RISTRETTO255_TOKEN_LEN)
        return _split(tokens, self._count, "pp_pending_batch_finalize")


class PendingGenericBatch(_Handle):
    """A generic batch on its way to the issuer: ``PendingGenericBatch(pending_tokens)``, the
    pending tokens (from :meth:`Client.request`, of any types and keys, at least one) in that
    order. The C batch keeps its own reference to each pending token: they may be closed
    afterwards. Raises InvalidInput for an empty list, ClosedHandleError when one of them is
    closed. May be finalized more than once, from any thread."""

    _free = staticmethod(_lib.pp_pending_generic_batch_free)
    _count: int

    def __init__(self, pending_tokens: Sequence[PendingToken]) -> None:
        if isinstance(pending_tokens, PendingToken):
            raise TypeError("pending_tokens must be a sequence of PendingToken, not one")
        tokens = list(pending_tokens)
        for token in tokens:
            if not isinstance(token, PendingToken):
                raise TypeError(f"pending_tokens must hold PendingToken, not "
                                f"{type(token).__name__}")
        out = PendingGenericBatchPtr()
        with contextlib.ExitStack() as stack:
            # Each pointer is borrowed for the call only: the batch takes its own references.
            array = (PendingTokenPtr * len(tokens))(
                *[stack.enter_context(token._borrow()) for token in tokens])
            rc = _lib.pp_pending_generic_batch_new(array, len(tokens), ctypes.byref(out))
        _check(rc, "pp_pending_generic_batch_new")
        self._set_pointer(out)
        self._count = len(tokens)

    def __len__(self) -> int:
        """The number of entries (pending tokens) of the batch."""
        return self._count

    @property
    def token_request(self) -> bytes:
        """The encoded GenericBatchTokenRequest to send to the issuer
        (``generic_token_requests<V>``: each entry's TokenRequest, in order), for
        :func:`issue_generic`."""
        with self._borrow() as ptr:
            return _output("pp_pending_generic_batch_request",
                           lambda out, cap, n: _lib.pp_pending_generic_batch_request(
                               ptr, out, cap, n),
                           4 + self._count * TOKEN_REQUEST_LEN)

    def finalize(self, response: BytesLike) -> List[Optional[bytes]]:
        """The issuer's encoded GenericBatchTokenResponse in, one entry per pending token out,
        in the batch's order: its encoded Token, or None for an entry the issuer refused (a
        partial answer is not an error). Each answered entry is finalized and verified as
        :meth:`PendingToken.finalize` would; raises InvalidInput for a malformed response (not
        one entry per request, an entry of another type than its request), VerificationFailed
        when an entry does not finalize into a valid token."""
        data = _bytes(response, "response")
        count = self._count
        lens = (ctypes.c_size_t * count)()
        with self._borrow() as ptr:
            tokens = _output("pp_pending_generic_batch_finalize",
                             lambda out, cap, n: _lib.pp_pending_generic_batch_finalize(
                                 ptr, data, len(data), out, cap, n, lens, count),
                             count * TOKEN_LEN)
        result: List[Optional[bytes]] = []
        at = 0
        for size in lens:
            result.append(tokens[at:at + size] if size else None)
            at += size
        if at != len(tokens):
            raise _errors.error_for(int(ResultCode["PP_ERR_INTERNAL"]),
                                    "pp_pending_generic_batch_finalize",
                                    "token lengths do not add up to the output")
        return result


class Client(_Handle):
    """A client of one issuer key. ``Client(issuer_spki)``: a type 2 (RSA-2048) key as its
    SubjectPublicKeyInfo (DER), the ``token-key`` of a challenge or of the issuer directory,
    decoded; raises InvalidKey for an unusable key. :meth:`voprf` makes a client of a type 1
    or 5 key."""

    _free = staticmethod(_lib.pp_client_free)

    def __init__(self, issuer_spki: BytesLike) -> None:
        data = _bytes(issuer_spki, "issuer_spki")
        out = ClientPtr()
        _check(_lib.pp_client_new(data, len(data), ctypes.byref(out)), "pp_client_new")
        self._set_pointer(out)

    @classmethod
    def voprf(cls, token_type: int, public_key: BytesLike) -> "Client":
        """A client of a VOPRF issuer key: ``token_type`` TOKEN_TYPE_VOPRF_P384 or
        TOKEN_TYPE_VOPRF_RISTRETTO255 and the serialized public element (SerializeElement:
        VOPRF_P384_PUBLIC_KEY_LEN bytes, compressed, or VOPRF_RISTRETTO255_PUBLIC_KEY_LEN
        bytes), the ``token-key`` of a challenge or directory of that type, decoded, or an
        issuer's :attr:`Issuer.public_key`. Raises UnsupportedToken for another token type,
        InvalidKey when the bytes are not an element of the group."""
        kind = _token_type(token_type)
        data = _bytes(public_key, "public_key")
        out = ClientPtr()
        _check(_lib.pp_client_new_voprf(kind, data, len(data), ctypes.byref(out)),
               "pp_client_new_voprf")
        return cls._adopt(out)

    def request(self, challenge: BytesLike) -> PendingToken:
        """Starts issuance for an encoded TokenChallenge (of the client's token type: see
        ``encode_challenge(..., token_type=...)``), with fresh randomness from the OS. Raises
        InvalidInput for a malformed challenge, UnsupportedToken for a challenge of another
        token type than the client's key."""
        data = _bytes(challenge, "challenge")
        out = PendingTokenPtr()
        with self._borrow() as ptr:
            rc = _lib.pp_client_request(ptr, data, len(data), ctypes.byref(out))
        _check(rc, "pp_client_request")
        return PendingToken._adopt(out)

    def request_with_randomness(self, challenge: BytesLike, *, nonce: BytesLike,
                                salt: BytesLike = b"", blind: BytesLike) -> PendingToken:
        """FOR KNOWN-ANSWER TESTS ONLY: :meth:`request` with the randomness given. Reusing it
        links tokens to their issuance.

        Type 2: the nonce (NONCE_LEN bytes), PSS salt (SALT_LEN bytes) and blinding factor
        (big-endian, 1 to 512 bytes). Types 1 and 5 (a :meth:`voprf` client): the nonce, no
        salt (``b""``, the default) and the blind's SerializeScalar (VOPRF_P384_SCALAR_LEN or
        VOPRF_RISTRETTO255_SCALAR_LEN bytes, the vectors' ``blind``). Raises InvalidInput for a
        wrong length or a blind that is not usable (not invertible; for VOPRF, not a canonical
        nonzero scalar)."""
        data = _bytes(challenge, "challenge")
        n, s, b = _bytes(nonce, "nonce"), _bytes(salt, "salt"), _bytes(blind, "blind")
        out = PendingTokenPtr()
        with self._borrow() as ptr:
            rc = _lib.pp_client_request_with_randomness(ptr, data, len(data), n, len(n), s,
                                                        len(s), b, len(b), ctypes.byref(out))
        _check(rc, "pp_client_request_with_randomness")
        return PendingToken._adopt(out)


    def request_amortized(self, challenge: BytesLike, count: int) -> PendingBatch:
        """Starts an amortized batch of ``count`` token requests (1 to MAX_AMORTIZED_BATCH)
        for an encoded TokenChallenge, each with a fresh nonce and blind from the OS: a VOPRF
        client (:meth:`voprf`, types 1 and 5) only. Raises UnsupportedToken for an RSA client
        or a challenge of another token type than the client's key, InvalidInput for a
        malformed challenge or a ``count`` out of range."""
        data = _bytes(challenge, "challenge")
        n = _size(count, "count")
        out = PendingBatchPtr()
        with self._borrow() as ptr:
            rc = _lib.pp_client_request_amortized(ptr, data, len(data), n, ctypes.byref(out))
        _check(rc, "pp_client_request_amortized")
        return PendingBatch._adopt_batch(out, n)

    def request_amortized_with_randomness(self, challenge: BytesLike, *,
                                          nonces: Sequence[BytesLike],
                                          blinds: Sequence[BytesLike]) -> PendingBatch:
        """FOR KNOWN-ANSWER TESTS ONLY: :meth:`request_amortized` with the randomness given,
        one nonce (NONCE_LEN bytes) and one blind's SerializeScalar (VOPRF_P384_SCALAR_LEN or
        VOPRF_RISTRETTO255_SCALAR_LEN bytes) per token request, as the batched vectors'
        ``nonces`` and ``blinds``. Reusing them links tokens to their issuance. Raises
        ValueError when the lists differ in length, InvalidInput for a wrong length, no
        entries or more than MAX_AMORTIZED_BATCH, or a blind that is not a canonical nonzero
        scalar."""
        data = _bytes(challenge, "challenge")
        if isinstance(nonces, (bytes, bytearray, memoryview)) or \
                isinstance(blinds, (bytes, bytearray, memoryview)):
            raise TypeError("nonces and blinds must be sequences of bytes, one per token")
        nonce_list = [_bytes(nonce, "nonce") for nonce in nonces]
        blind_list = [_bytes(blind, "blind") for blind in blinds]
        if len(nonce_list) != len(blind_list):
            raise ValueError(f"{len(nonce_list)} nonces for {len(blind_list)} blinds")
        joined_nonces, joined_blinds = b"".join(nonce_list), b"".join(blind_list)
        out = PendingBatchPtr()
        with self._borrow() as ptr:
            rc = _lib.pp_client_request_amortized_with_randomness(
                ptr, data, len(data), joined_nonces, len(joined_nonces), joined_blinds,
                len(joined_blinds), ctypes.byref(out))
        _check(rc, "pp_client_request_amortized_with_randomness")
        return PendingBatch._adopt_batch(out, len(nonce_list))


def issue_generic(issuers: Sequence[Issuer], request: BytesLike, *,
                  max_tokens: int = DEFAULT_MAX_BATCH_TOKENS, threads: int = 0) -> bytes:
    """Generic batched issuance: an encoded GenericBatchTokenRequest
    (:attr:`PendingGenericBatch.token_request`) of at most ``max_tokens`` TokenRequests of any
    types in, the encoded GenericBatchTokenResponse out. The keys of ``issuers`` (at least one)
    together serve the batch: each entry is issued, as :meth:`Issuer.issue` would issue it
    alone, by the issuer whose key its type and truncated key id name, on up to ``threads``
    threads (0: the machine's available parallelism; 1: the calling thread only; all are
    joined before the call returns; the GIL is released meanwhile). An entry no issuer serves
    is absent from the answer (:meth:`PendingGenericBatch.finalize` gives None for it): that
    is not an error.

    Raises TooLarge (HTTP 413) for a batch of more than ``max_tokens`` entries,
    UnprocessableBlindedToken for a malformed batch (truncated, trailing bytes, an entry of an
    unknown type, none at all), InvalidInput for an empty ``issuers``."""
    if isinstance(issuers, Issuer):
        raise TypeError("issuers must be a sequence of Issuer, not one")
    issuer_list = list(issuers)
    for issuer in issuer_list:
        if not isinstance(issuer, Issuer):
            raise TypeError(f"issuers must hold Issuer, not {type(issuer).__name__}")
    data = _bytes(request, "request")
    limit = _size(max_tokens, "max_tokens")
    workers = _size(threads, "threads")
    with contextlib.ExitStack() as stack:
        array = (IssuerPtr * len(issuer_list))(
            *[stack.enter_context(issuer._borrow()) for issuer in issuer_list])
        return _output("pp_issuer_issue_generic",
                       lambda out, cap, n: _lib.pp_issuer_issue_generic(
                           array, len(issuer_list), data, len(data), limit, workers, out, cap,
                           n),
                       3 * len(data) + 64)


# ---------------------------------------------------------------------------------------------
# Issuer directories


def directory_token_keys(directory_json: Text, token_type: int) -> List[bytes]:
    """The keys of ``token_type`` an RFC 9578 issuer directory (its JSON text) lists, in its
    order, each as its ``token-key`` decoded (the Token Key Encoding): for type 2 the
    RSASSA-PSS SubjectPublicKeyInfo (PUBLIC_KEY_LEN bytes, what :class:`Client` takes), for
    types 1 and 5 the serialized public element (what :meth:`Client.voprf` takes), each
    checked to be a valid key. A key listed twice is listed once, at its first listing. A
    directory without keys of that type gives ``[]``.

    Raises UnsupportedToken for a token type other than 1, 2 and 5, InvalidInput for a
    malformed directory, InvalidKey for a key of that type that is not a valid one."""
    data = _text(directory_json, "directory_json")
    kind = _token_type(token_type)
    keys = _output("pp_directory_token_keys",
                   lambda out, cap, n: _lib.pp_directory_token_keys(data, len(data), kind, out,
                                                                    cap, n),
                   4 * PUBLIC_KEY_LEN)
    if not keys:
        return []
    size = int(_lib.pp_token_key_len(kind))
    if not size or len(keys) % size:
        raise _errors.error_for(int(ResultCode["PP_ERR_INTERNAL"]), "pp_directory_token_keys",
                                f"{len(keys)} bytes are not keys of {size} bytes")
    return [keys[i:i + size] for i in range(0, len(keys), size)]


def directory_not_before(directory_json: Text, token_type: int) -> List[int]:
    """The ``not-before`` of each key :func:`directory_token_keys` lists for ``token_type``, in
    the same order, as Unix seconds (0 for a key listed without one). An origin taking its keys
    from a directory offers in its challenges the first key whose ``not-before`` has passed
    (RFC 9578 §4): the issuer lists the key it will issue with next before the one issuing
    now, with its start.

    Raises what :func:`directory_token_keys` raises for the same directory and type."""
    data = _text(directory_json, "directory_json")
    kind = _token_type(token_type)
    out_len = ctypes.c_size_t(0)
    cap = 8
    for _ in range(3):
        buffer = (ctypes.c_uint64 * cap)()
        rc = _lib.pp_directory_not_before(data, len(data), kind, buffer, cap,
                                          ctypes.byref(out_len))
        if rc == _BUFFER_TOO_SMALL and out_len.value > cap:
            cap = out_len.value
            continue
        _check(rc, "pp_directory_not_before")
        return [int(value) for value in buffer[:out_len.value]]
    raise _errors.error_for(_BUFFER_TOO_SMALL, "pp_directory_not_before")


# ---------------------------------------------------------------------------------------------
# Challenges and headers


def encode_challenge(issuer_name: str, *, redemption_context: BytesLike = b"",
                     origin_info: Union[str, Iterable[str]] = "",
                     token_type: int = TOKEN_TYPE_BLIND_RSA) -> bytes:
    """An encoded TokenChallenge (RFC 9577 §2.1), for tokens of ``token_type``
    (TOKEN_TYPE_BLIND_RSA by default; TOKEN_TYPE_VOPRF_P384 or TOKEN_TYPE_VOPRF_RISTRETTO255 for
    a :meth:`Client.voprf` client).

    ``redemption_context``: empty or REDEMPTION_CONTEXT_LEN bytes; ``origin_info``: "" (any
    origin), origin names joined by commas, or an iterable of names. Raises InvalidInput when a
    length is out of range (an empty issuer name included).
    """
    if not isinstance(issuer_name, str):
        raise TypeError(f"issuer_name must be str, not {type(issuer_name).__name__}")
    if not isinstance(origin_info, str):
        origin_info = ",".join(origin_info)
    name = issuer_name.encode("utf-8")
    context = _bytes(redemption_context, "redemption_context")
    origins = origin_info.encode("utf-8")
    if not 0 <= token_type <= 0xFFFF:
        raise ValueError(f"token_type {token_type} is not a uint16")
    return _output("pp_challenge_encode",
                   lambda out, cap, n: _lib.pp_challenge_encode(
                       token_type, name, len(name), context, len(context), origins,
                       len(origins), out, cap, n),
                   # the encoding's exact size: the library answers it too when it is short
                   2 + 2 + len(name) + 1 + len(context) + 2 + len(origins))


def www_authenticate(challenge: BytesLike, token_key: BytesLike,
                     max_age: Optional[int] = None) -> str:
    """One ``WWW-Authenticate`` challenge: ``PrivateToken challenge="...",
    token-key="..."[, max-age="..."]``. Join several with ", " in one header."""
    data = _bytes(challenge, "challenge")
    key = _bytes(token_key, "token_key")
    if max_age is not None and not 0 <= max_age < 2**64:
        raise ValueError(f"max_age {max_age} is not a uint64")
    age = None if max_age is None else ctypes.byref(ctypes.c_uint64(max_age))
    return _output("pp_challenge_www_authenticate",
                   lambda out, cap, n: _lib.pp_challenge_www_authenticate(
                       data, len(data), key, len(key), age, out, cap, n),
                   128, ctypes.c_char).decode("ascii")


def encode_authorization(token: BytesLike) -> str:
    """The ``Authorization`` value for an encoded Token: ``PrivateToken token="..."``. Raises
    InvalidParams when ``token`` is not a well-formed Token (truncated, too long, trailing
    bytes) and UnsupportedToken for a token of another type than 1, 2 or 5."""
    data = _bytes(token, "token")
    return _output("pp_authorization_encode",
                   lambda out, cap, n: _lib.pp_authorization_encode(data, len(data), out, cap, n),
                   (len(data) + 2) // 3 * 4 + 24, ctypes.c_char).decode("ascii")


def parse_authorization(authorization: Text) -> bytes:
    """The encoded Token of an ``Authorization`` value, not verified. Raises InvalidParams
    unless the value is one PrivateToken credential with one base64url ``token`` parameter."""
    data = _text(authorization, "authorization")
    return _output("pp_authorization_parse",
                   lambda out, cap, n: _lib.pp_authorization_parse(data, len(data), out, cap, n),
                   TOKEN_LEN)


from .refresher import DirectoryVerifier  # noqa: E402 (it builds on Verifier, above)

__all__ = [
    "Verifier", "DirectoryVerifier", "Redeemer", "Issuer", "Client", "PendingToken",
    "PendingBatch",
    "PendingGenericBatch", "issue_generic", "MAX_AMORTIZED_BATCH", "DEFAULT_MAX_BATCH_TOKENS",
    "directory_token_keys", "directory_not_before",
    "encode_challenge", "www_authenticate", "encode_authorization", "parse_authorization",
    "library_version", "library_path", "LIBRARY_ENV", "BUNDLED_LIBRARY",
    "VERSION", "VERSION_MAJOR", "VERSION_MINOR", "VERSION_PATCH", "TOKEN_TYPE_BLIND_RSA",
    "TOKEN_LEN", "TOKEN_REQUEST_LEN", "TOKEN_RESPONSE_LEN", "BLINDED_MSG_LEN", "TOKEN_KEY_ID_LEN",
    "PUBLIC_KEY_LEN", "NONCE_LEN", "SALT_LEN", "REDEMPTION_CONTEXT_LEN",
    "TOKEN_TYPE_VOPRF_P384", "TOKEN_TYPE_VOPRF_RISTRETTO255", "VOPRF_P384_PUBLIC_KEY_LEN",
    "VOPRF_P384_SCALAR_LEN", "VOPRF_P384_TOKEN_REQUEST_LEN", "VOPRF_P384_TOKEN_RESPONSE_LEN",
    "VOPRF_P384_TOKEN_LEN", "VOPRF_RISTRETTO255_PUBLIC_KEY_LEN", "VOPRF_RISTRETTO255_SCALAR_LEN",
    "VOPRF_RISTRETTO255_TOKEN_REQUEST_LEN", "VOPRF_RISTRETTO255_TOKEN_RESPONSE_LEN",
    "VOPRF_RISTRETTO255_TOKEN_LEN",
    "RESULT_CODES", "ResultCode", "PrivacyPassError", "ClosedHandleError",
    "VerificationFailed", "AlreadySpent", "UnsupportedToken", "UnknownIssuanceKey",
    "UnprocessableBlindedToken", "Unauthenticated", "Forbidden", "IdempotencyInFlight",
    "IdempotencyMismatch", "RateLimited", "IssueAtRedemptionRoute", "MethodNotAllowed", "TooLarge",
    "StoreUnavailable", "InvalidRequest", "MethodNotFound", "InvalidParams", "InternalError",
    "ParseError", "NullArgument", "BufferTooSmall", "InvalidInput", "InvalidKey", "InvalidStoreUrl",
    "LibraryPanic", "PrivateTokenType",
]
