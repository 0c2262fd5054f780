"""Every error path: each raises its own exception class, never crashes the interpreter."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

import privacypass as pp
from privacypass._native import lib
from conftest import make_token
from test_api import b64url


@pytest.fixture(scope="module")
def token(issuer: pp.Issuer, challenge: bytes) -> bytes:
    return make_token(issuer, challenge)


@pytest.fixture()
def verifier(issuer: pp.Issuer):
    with pp.Verifier.from_spki(issuer.public_key) as verifier:
        yield verifier


# ---------------------------------------------------------------------------------------------
# Keys


@pytest.mark.parametrize("pem", [
    "",
    "no key here",
    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
])
def test_bad_issuer_pem(pem: str) -> None:
    with pytest.raises(pp.InvalidKey) as caught:
        pp.Issuer.from_pem(pem)
    assert caught.value.code == 4 and "pp_issuer_new_from_pem" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_public_key_is_not_an_issuer_key(issuer: pp.Issuer) -> None:
    import base64
    body = base64.b64encode(issuer.public_key).decode()
    with pytest.raises(pp.InvalidKey):
        pp.Issuer.from_pem(f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")


@pytest.mark.parametrize("pem, error", [
    ("no key here", pp.InvalidKey),
    ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", pp.InvalidKey),
    (b"\xff\xfe", pp.InvalidInput),
])
def test_bad_verifier_pem(pem, error) -> None:
    with pytest.raises(error):
        pp.Verifier.from_pem(pem)


@pytest.mark.parametrize("spki", [b"", b"\x30" * 300])
def test_bad_spki(spki: bytes, vectors: List[Dict[str, bytes]]) -> None:
    with pytest.raises(pp.InvalidKey):
        pp.Verifier.from_spki(spki)
    with pytest.raises(pp.InvalidKey):
        pp.Client(spki)


def test_truncated_client_key(vectors: List[Dict[str, bytes]]) -> None:
    with pytest.raises(pp.InvalidKey):
        pp.Client(vectors[0]["pkS"][:100])


@pytest.mark.parametrize("document, error", [
    ("{", pp.InvalidInput),
    ("{}", pp.InvalidInput),
    ("[]", pp.InvalidInput),
    ('{"token-keys": []}', pp.InvalidKey),
    ('{"token-keys": [{"token-type": 1, "token-key": "AA"}]}', pp.InvalidKey),
    ('{"token-keys": [{"token-type": 2, "token-key": "!!"}]}', pp.InvalidKey),
    ('{"token-keys": [{"token-type": 2, "token-key": "AAAA"}]}', pp.InvalidKey),
    ('{"token-keys": [{"token-type": "2", "token-key": "AA"}]}', pp.InvalidInput),
    ('{"token-keys": [{"token-type": 2}]}', pp.InvalidInput),
])
def test_bad_directory(document: str, error) -> None:
    with pytest.raises(error):
        pp.Verifier.from_directory(document)


def test_directory_not_before(issuer: pp.Issuer, token: bytes) -> None:
    key = b64url(issuer.public_key, pad=False)
    with pytest.raises(pp.InvalidInput):
        pp.Verifier.from_directory(
            f'{{"token-keys": [{{"token-type": 2, "token-key": "{key}", "not-before": "0"}}]}}')
    # A key that becomes valid in the far future does not verify today's tokens.
    with pp.Verifier.from_directory(
            f'{{"token-keys": [{{"token-type": 2, "token-key": "{key}", '
            f'"not-before": 4000000000}}]}}') as future:
        with pytest.raises(pp.VerificationFailed):
            future.verify(token)


# ---------------------------------------------------------------------------------------------
# Wrong lengths and malformed values


def test_wrong_token_lengths(verifier: pp.Verifier, token: bytes) -> None:
    # Bytes of type 2 that are not a token: InvalidParams (-32602, HTTP 400).
    with pp.Redeemer(verifier, "memory:") as redeemer:
        for bad in (b"", token[:-1], token + b"\x00", b"\x00\x02" + token[2:100]):
            with pytest.raises(pp.InvalidParams) as caught:
                verifier.verify(bad)
            assert caught.value.jsonrpc_code == -32602 and caught.value.http_status == 400
            with pytest.raises(pp.InvalidParams):
                redeemer.redeem(bad)
        # A token of another type: UnsupportedToken (-32022), whole or truncated.
        for other in (b"\x00\x03" + token[2:], b"\x00\x03" + token[2:100]):
            with pytest.raises(pp.UnsupportedToken) as unsupported:
                verifier.verify(other)
            assert unsupported.value.jsonrpc_code == -32022
            with pytest.raises(pp.UnsupportedToken):
                redeemer.redeem(other)
        # None of these spent anything.
        redeemer.redeem(token)
    tampered = bytearray(token)
    tampered[200] ^= 0x80
    with pytest.raises(pp.VerificationFailed):
        verifier.verify(bytes(tampered))
    with pytest.raises(pp.InvalidParams):
        pp.encode_authorization(token[:-1])
    with pytest.raises(pp.UnsupportedToken):
        pp.encode_authorization(b"\x00\x03" + token[2:])


def test_wrong_challenge(verifier: pp.Verifier, token: bytes) -> None:
    with pytest.raises(pp.VerificationFailed):
        verifier.verify(token, pp.encode_challenge("other.example"))
    with pytest.raises(pp.VerificationFailed):
        verifier.verify(token, b"\x00")


@pytest.mark.parametrize("value", [
    "",
    "PrivateToken",
    "PrivateToken token=",
    'PrivateToken token="!!!not base64!!!"',
    'PrivateToken token="AAAA"x',
    "Bearer abc",
    'PrivateToken token="AAAA", token="AAAA"',
])
def test_bad_authorization(verifier: pp.Verifier, issuer: pp.Issuer, value: str) -> None:
    with pytest.raises(pp.InvalidParams) as caught:
        pp.parse_authorization(value)
    assert caught.value.code == -32602 and caught.value.http_status == 400
    with pytest.raises(pp.InvalidParams):
        verifier.verify_authorization(value)
    with pp.Redeemer(verifier, "memory:") as redeemer, pytest.raises(pp.InvalidParams):
        redeemer.redeem_authorization(value)


def test_authorization_with_a_short_token(verifier: pp.Verifier, token: bytes) -> None:
    # Well-formed header, base64url fine, but not a Token: as for the bytes, InvalidParams for a
    # truncated token of type 2, UnsupportedToken for another type (b"ab" is type 0x6162).
    value = f'PrivateToken token="{b64url(token[:100])}"'
    with pytest.raises(pp.InvalidParams):
        verifier.verify_authorization(value)
    with pp.Redeemer(verifier, "memory:") as redeemer, pytest.raises(pp.InvalidParams):
        redeemer.redeem_authorization(value)
    with pytest.raises(pp.UnsupportedToken):
        verifier.verify_authorization(f'PrivateToken token="{b64url(b"abc")}"')


def test_issuer_errors(issuer: pp.Issuer, challenge: bytes) -> None:
    with pp.Client(issuer.public_key) as client, client.request(challenge) as pending:
        request = pending.token_request
    key_id = issuer.token_key_id
    for bad in (b"", request[:-1], request + b"\x00", b"\x00\x01" + request[2:],
                request[:2] + bytes([request[2] ^ 1]) + request[3:]):
        with pytest.raises(pp.UnprocessableBlindedToken) as caught:
            issuer.issue(bad)
        assert caught.value.http_status == 422
    with pytest.raises(pp.UnprocessableBlindedToken):
        issuer.issue_blinded(key_id, b"\xff" * 256)  # not below the modulus
    with pytest.raises(pp.UnprocessableBlindedToken):
        issuer.issue_blinded(key_id, request[3:-1])
    with pytest.raises(pp.UnknownIssuanceKey) as unknown:
        issuer.issue_blinded(key_id[:31], request)
    assert unknown.value.http_status == 404
    with pytest.raises(pp.UnknownIssuanceKey):
        issuer.issue_blinded(bytes([key_id[0] ^ 1]) + key_id[1:], request)


def test_client_errors(issuer: pp.Issuer, challenge: bytes) -> None:
    ones = b"\x01" * 600
    with pp.Client(issuer.public_key) as client:
        for nonce, salt, blind in ((31, 48, 256), (32, 47, 256), (32, 48, 0), (32, 48, 513)):
            with pytest.raises(pp.InvalidInput):
                client.request_with_randomness(challenge, nonce=ones[:nonce], salt=ones[:salt],
                                               blind=ones[:blind])
        with pytest.raises(pp.InvalidInput):  # r = 0 is not invertible
            client.request_with_randomness(challenge, nonce=ones[:32], salt=ones[:48],
                                           blind=bytes(256))
        with pytest.raises(pp.InvalidInput):
            client.request(b"")
        with pytest.raises(pp.UnsupportedToken):
            client.request(pp.encode_challenge("issuer.example", token_type=1))
        with client.request(challenge) as pending:
            with pytest.raises(pp.InvalidInput):
                pending.finalize(bytes(255))
            with pytest.raises(pp.VerificationFailed):
                pending.finalize(b"\x01" * 256)


def test_challenge_errors(issuer: pp.Issuer, challenge: bytes) -> None:
    with pytest.raises(pp.InvalidInput):
        pp.encode_challenge("")
    with pytest.raises(pp.InvalidInput):
        pp.encode_challenge("issuer.example", redemption_context=b"12345")
    with pytest.raises(pp.InvalidInput):
        pp.encode_challenge("i" * 65536)
    with pytest.raises(pp.InvalidInput):
        pp.www_authenticate(challenge[:-1], issuer.public_key)
    with pytest.raises(pp.InvalidInput):
        pp.www_authenticate(challenge, b"")
    with pytest.raises(ValueError):
        pp.www_authenticate(challenge, issuer.public_key, max_age=-1)
    with pytest.raises(ValueError):
        pp.encode_challenge("issuer.example", token_type=70000)


def test_store_urls(verifier: pp.Verifier, issuer: pp.Issuer, challenge: bytes,
                    token: bytes) -> None:
    for url in ("memory:lots", "", "postgres://x"):
        with pytest.raises(pp.InvalidStoreUrl):
            pp.Redeemer(verifier, url)
    with pytest.raises(ValueError):
        pp.Redeemer(verifier, "memory:\0")
    # A full memory store refuses new spends rather than forgetting old ones.
    with pp.Redeemer(verifier, "memory:1") as redeemer:
        redeemer.redeem(token)
        with pytest.raises(pp.StoreUnavailable) as caught:
            redeemer.redeem(make_token(issuer, challenge))
        assert caught.value.http_status == 503
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(token)
    # Redis URLs are store URLs; one naming a port nothing listens on is unavailable.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % s.getsockname()[1]
    for url in (f"redis://{address}?timeout_ms=500", f"redis://user:secret@{address}/2?timeout_ms=500",
                f"redis+cluster://{address},{address}?timeout_ms=500"):
        with pytest.raises(pp.StoreUnavailable):
            pp.Redeemer(verifier, url)
    with pytest.raises(pp.InvalidStoreUrl):
        pp.Redeemer(verifier, "redis://")


def test_python_type_errors(verifier: pp.Verifier, issuer: pp.Issuer, token: bytes) -> None:
    with pytest.raises(TypeError):
        verifier.verify(pp.encode_authorization(token))  # type: ignore[arg-type]  # str, not bytes
    with pytest.raises(TypeError):
        verifier.verify(token, "challenge")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pp.Verifier.from_spki("key")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pp.Redeemer(issuer)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pp.Redeemer(verifier, b"memory:")  # type: ignore[arg-type]
    # No default store: which one decides where a token is spent once.
    with pytest.raises(TypeError, match="store_url"):
        pp.Redeemer(verifier)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        pp.encode_challenge(b"issuer.example")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pp.parse_authorization(42)  # type: ignore[arg-type]
    # Handles are typed in ctypes too: the wrong kind is refused before C sees it.
    with pytest.raises(ctypes.ArgumentError):
        lib.pp_verifier_verify(issuer._ptr, token, len(token), None, 0)


def test_null_arguments_reach_the_library_as_null_argument(token: bytes) -> None:
    # The classes never pass NULL; the raw functions answer PP_ERR_NULL_ARGUMENT for it.
    assert lib.pp_verifier_verify(None, token, len(token), None, 0) == pp.NullArgument.code
    assert lib.pp_verifier_new_from_spki(None, 5, None) == pp.NullArgument.code
    with pytest.raises(pp.NullArgument):
        pp.errors.check(lib.pp_verifier_verify(None, token, len(token), None, 0), "pp_verifier_verify")


def test_buffer_too_small_protocol(issuer: pp.Issuer) -> None:
    out_len = ctypes.c_size_t(0)
    assert lib.pp_issuer_public_key(issuer._ptr, None, 0, ctypes.byref(out_len)) == \
        pp.BufferTooSmall.code
    assert out_len.value == pp.PUBLIC_KEY_LEN
    small = (ctypes.c_uint8 * 10)()
    assert lib.pp_issuer_public_key(issuer._ptr, small, 10, ctypes.byref(out_len)) == \
        pp.BufferTooSmall.code
    assert bytes(small) == bytes(10)  # nothing written
    # The binding grows its buffer when the library asks for more.
    assert pp._output("pp_issuer_public_key",
                      lambda out, cap, n: lib.pp_issuer_public_key(issuer._ptr, out, cap, n),
                      1) == issuer.public_key


# ---------------------------------------------------------------------------------------------
# Closed handles: a Python exception, never a crash


def test_closed_handles(issuer: pp.Issuer, challenge: bytes, token: bytes) -> None:
    spki = issuer.public_key
    verifier = pp.Verifier.from_spki(spki)
    redeemer = pp.Redeemer(verifier, "memory:")
    client = pp.Client(spki)
    pending = client.request(challenge)
    own_issuer = pp.Issuer.from_pem(issuer_pem_of_vector0())
    open_verifier = pp.Verifier.from_spki(spki)
    open_redeemer = pp.Redeemer(open_verifier, "memory:")
    for handle in (verifier, redeemer, client, pending, own_issuer):
        handle.close()
        assert handle.closed
    calls = [
        lambda: verifier.verify(token),
        lambda: verifier.verify_authorization(pp.encode_authorization(token)),
        lambda: pp.Redeemer(verifier, "memory:"),
        lambda: redeemer.redeem(token),
        lambda: redeemer.redeem_authorization(pp.encode_authorization(token)),
        lambda: redeemer.set_keys(open_verifier),  # a closed redeemer
        lambda: open_redeemer.set_keys(verifier),  # the keys of a closed verifier
        lambda: client.request(challenge),
        lambda: client.request_with_randomness(challenge, nonce=b"", salt=b"", blind=b""),
        lambda: pending.token_request,
        lambda: pending.finalize(bytes(256)),
        lambda: own_issuer.public_key,
        lambda: own_issuer.token_key_id,
        lambda: own_issuer.issue(bytes(259)),
        lambda: own_issuer.issue_blinded(bytes(32), bytes(256)),
    ]
    for call in calls:
        with pytest.raises(pp.ClosedHandleError, match="is closed"):
            call()
    # The open redeemer kept its keys through the refused set_keys.
    open_redeemer.redeem(token)
    open_redeemer.close()
    open_verifier.close()


def test_closed_handle_error_is_a_privacypass_error(issuer: pp.Issuer) -> None:
    import pickle
    verifier = pp.Verifier.from_spki(issuer.public_key)
    verifier.close()
    # An integrator's one catch-all sees it, answering an internal error (no pp_result of its own).
    with pytest.raises(pp.PrivacyPassError) as caught:
        verifier.verify(b"")
    err = caught.value
    assert type(err) is pp.ClosedHandleError
    assert isinstance(err, ValueError) and not isinstance(err, pp.InternalError)
    assert (err.code, err.jsonrpc_code, err.http_status) == (-32603, -32603, 500)
    assert err.c_name == "PP_ERR_INTERNAL" and err.function is None
    assert err.message == "use of a closed handle"
    assert str(err) == "use of a closed handle: Verifier is closed"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is pp.ClosedHandleError and str(again) == str(err)


def issuer_pem_of_vector0() -> bytes:
    from conftest import load_vectors
    return load_vectors()[0]["skS"]


def test_closing_a_pending_tokens_client_keeps_it_usable(issuer: pp.Issuer,
                                                          challenge: bytes) -> None:
    client = pp.Client(issuer.public_key)
    pending = client.request(challenge)
    client.close()
    with pending:
        token = pending.finalize(issuer.issue(pending.token_request))
    with pp.Verifier.from_spki(issuer.public_key) as verifier:
        verifier.verify(token, challenge)


# ---------------------------------------------------------------------------------------------
# Finding the library


def _import_in_subprocess(env: Dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import privacypass"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_library_not_found_names_both_options(tmp_path: Path) -> None:
    # A copy of the package without libprivacypass.so, and no PRIVACYPASS_LIBRARY.
    package = Path(pp.__file__).parent
    copy = tmp_path / "privacypass"
    copy.mkdir()
    for source in package.glob("*.py"):
        shutil.copy(source, copy)
    env = {k: v for k, v in os.environ.items() if k != "PRIVACYPASS_LIBRARY"}
    env["PYTHONPATH"] = str(tmp_path)
    result = _import_in_subprocess(env, tmp_path)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "PRIVACYPASS_LIBRARY" in result.stderr
    assert str(copy / "libprivacypass.so") in result.stderr

    env["PRIVACYPASS_LIBRARY"] = str(tmp_path / "nowhere" / "libprivacypass.so")
    result = _import_in_subprocess(env, tmp_path)
    assert result.returncode != 0 and "is not a file" in result.stderr
    assert "PRIVACYPASS_LIBRARY" in result.stderr and "libprivacypass.so before" in result.stderr

    not_a_library = tmp_path / "libprivacypass.so"
    not_a_library.write_bytes(b"not an ELF file")
    env["PRIVACYPASS_LIBRARY"] = str(not_a_library)
    result = _import_in_subprocess(env, tmp_path)
    assert result.returncode != 0 and "cannot load" in result.stderr

    # The environment variable wins over a missing bundled copy.
    env["PRIVACYPASS_LIBRARY"] = pp.library_path()
    assert _import_in_subprocess(env, tmp_path).returncode == 0
