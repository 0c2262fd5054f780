"""The binding against the header, the RFC 9578 type 2 vectors, and whole issuance cycles."""

from __future__ import annotations

import base64
import gc
import re
from pathlib import Path
from typing import Dict, List

import pytest

import privacypass as pp
from privacypass import _native
from conftest import HEADER, make_token


def b64url(data: bytes, pad: bool = True) -> str:
    text = base64.urlsafe_b64encode(data).decode("ascii")
    return text if pad else text.rstrip("=")


def spki_pem(spki: bytes) -> str:
    body = base64.b64encode(spki).decode("ascii")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def directory_json(spki: bytes, not_before: int = 0) -> str:
    return ('{"issuer-request-uri": "https://issuer.example/token-request", "token-keys": ['
            '{"token-type": 1, "token-key": "AAAA", "not-before": 0}, '
            f'{{"token-type": 2, "token-key": "{b64url(spki)}", "not-before": {not_before}}}]}}')


# ---------------------------------------------------------------------------------------------
# The binding matches include/privacypass.h


def header_text() -> str:
    return HEADER.read_text(encoding="utf-8")


def test_result_table_is_the_headers_enum() -> None:
    enum_body = re.search(r"typedef enum pp_result \{(.*?)\} pp_result;", header_text(), re.S)
    assert enum_body
    header_codes = dict(
        (name, int(value)) for name, value in re.findall(r"(PP_\w+) = (-?\d+),", enum_body.group(1)))
    assert header_codes.pop("PP_OK") == 0
    table = {c_name: value for _, c_name, value in pp.RESULT_CODES}
    assert table == header_codes
    for name, c_name, value in pp.RESULT_CODES:
        cls = getattr(pp, name)
        assert issubclass(cls, pp.PrivacyPassError) and cls is not pp.PrivacyPassError
        assert cls.code == value and cls.c_name == c_name
        assert pp.ResultCode[c_name] == value
        err = pp.errors.error_for(value, "pp_something")
        assert type(err) is cls and err.code == value
        assert err.message != "unknown result code"
        assert str(err) == f"pp_something: {err.message}"
        if value < 0:
            assert err.jsonrpc_code == value
        else:
            assert err.jsonrpc_code == -32603 and err.http_status == 500
    assert len({name for name, _, _ in pp.RESULT_CODES}) == len(pp.RESULT_CODES)


def test_exports_and_type_stubs_follow_the_table() -> None:
    import ast
    names = [name for name, _, _ in pp.RESULT_CODES]
    assert set(names) <= set(pp.__all__)
    tree = ast.parse(Path(pp.errors.__file__).read_text(encoding="utf-8"))
    stubs = [node for node in ast.walk(tree) if isinstance(node, ast.If)
             and ast.unparse(node.test) == "TYPE_CHECKING"]
    assert len(stubs) == 1
    classes = {c.name: [ast.unparse(b) for b in c.bases] for c in stubs[0].body
               if isinstance(c, ast.ClassDef)}
    assert list(classes) == names
    for name in names:
        runtime_bases = [b.__name__ for b in getattr(pp, name).__bases__]
        assert classes[name] == runtime_bases, name


def test_every_header_function_is_declared() -> None:
    functions = set(re.findall(r"^\S.*?\b(pp_\w+)\(", header_text(), re.M))
    assert functions == set(_native._PROTOTYPES)
    for name in functions:
        assert getattr(_native.lib, name).argtypes is not None


def test_constants_are_the_headers() -> None:
    defines = dict(re.findall(r"#define PP_(\w+) (\d+)\n", header_text()))
    assert defines
    for name, value in defines.items():
        assert getattr(pp, name) == int(value), name
    assert pp.VERSION == pp.library_version() == "0.1.0"
    assert pp.__version__ == pp.VERSION


def test_result_codes_and_statuses() -> None:
    err = pp.AlreadySpent()
    assert (err.code, err.http_status, err.jsonrpc_code) == (-32021, 403, -32021)
    assert err.message == "token already spent"
    assert pp.StoreUnavailable().http_status == 503
    assert pp.UnknownIssuanceKey().http_status == 404
    assert pp.LibraryPanic().jsonrpc_code == -32603
    unknown = pp.errors.error_for(424242)
    assert type(unknown) is pp.PrivacyPassError and unknown.code == 424242
    assert unknown.message == "unknown result code"
    assert isinstance(pp.InvalidKey(), ValueError) and not isinstance(pp.AlreadySpent(), ValueError)


def test_panic_comes_back_as_an_exception() -> None:
    with pytest.raises(pp.LibraryPanic):
        pp._test_panic()
    assert pp.library_version() == pp.VERSION


def test_errors_pickle() -> None:
    import pickle
    err = pickle.loads(pickle.dumps(pp.errors.error_for(-32021, "pp_redeemer_redeem")))
    assert type(err) is pp.AlreadySpent and str(err) == "pp_redeemer_redeem: token already spent"


# ---------------------------------------------------------------------------------------------
# RFC 9578 type 2 vectors


def test_five_vectors(vectors: List[Dict[str, bytes]]) -> None:
    assert len(vectors) == 5


@pytest.mark.parametrize("index", range(5))
def test_vector(vectors: List[Dict[str, bytes]], index: int) -> None:
    v = vectors[index]
    token = v["token"]
    key_id = token[66:98]
    with pp.Issuer.from_pem(v["skS"]) as issuer:
        assert issuer.public_key == v["pkS"]
        assert issuer.token_key_id == key_id
        assert issuer.issue(v["token_request"]) == v["token_response"]
        assert issuer.issue_blinded(key_id, v["token_request"]) == v["token_response"]
        assert issuer.issue_blinded(key_id, v["token_request"][3:]) == v["token_response"]
    with pp.Issuer.from_pem(v["skS"].decode("ascii")) as issuer:  # str PEM too
        assert issuer.public_key == v["pkS"]

    with pp.Client(v["pkS"]) as client:
        with client.request_with_randomness(v["token_challenge"], nonce=v["nonce"],
                                            salt=v["salt"], blind=v["blind"]) as pending:
            assert pending.token_request == v["token_request"]
            assert pending.finalize(v["token_response"]) == token
            assert pending.finalize(bytearray(v["token_response"])) == token  # again

    other = pp.encode_challenge("other.example")
    verifiers = [pp.Verifier.from_spki(v["pkS"]), pp.Verifier.from_pem(spki_pem(v["pkS"])),
                 pp.Verifier.from_directory(directory_json(v["pkS"]))]
    for verifier in verifiers:
        with verifier:
            verifier.verify(token, v["token_challenge"])
            verifier.verify(token)
            with pytest.raises(pp.VerificationFailed):
                verifier.verify(token, other)

    authorization = pp.encode_authorization(token)
    assert authorization == f'PrivateToken token="{b64url(token)}"'
    assert pp.parse_authorization(authorization) == token
    assert pp.parse_authorization(authorization.encode()) == token
    assert pp.parse_authorization(f"PrivateToken token={b64url(token, pad=False)}") == token

    with pp.Verifier.from_spki(v["pkS"]) as verifier, pp.Redeemer(verifier) as redeemer:
        verifier.verify_authorization(authorization, v["token_challenge"])
        redeemer.redeem(token, v["token_challenge"])
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(token, v["token_challenge"])
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem_authorization(authorization)


# ---------------------------------------------------------------------------------------------
# The whole protocol in-process


@pytest.mark.parametrize("store", ["memory:", "memory:1000", "rocksdb"])
def test_full_cycle(issuer: pp.Issuer, store: str, tmp_path: Path) -> None:
    if store == "rocksdb":
        store = f"rocksdb:{tmp_path / 'spends'}"
    spki = issuer.public_key
    context = bytes([0x5A]) * pp.REDEMPTION_CONTEXT_LEN
    challenge = pp.encode_challenge("issuer.example", redemption_context=context,
                                    origin_info=["origin.example", "other.example"])
    assert challenge == pp.encode_challenge("issuer.example", redemption_context=context,
                                            origin_info="origin.example,other.example")
    www = pp.www_authenticate(challenge, spki, max_age=3600)
    assert www.startswith('PrivateToken challenge="') and www.endswith(', max-age="3600"')
    assert pp.www_authenticate(challenge, spki) == www[:-len(', max-age="3600"')]
    assert f'token-key="{b64url(spki)}"' in www or f'token-key="{b64url(spki, False)}"' in www

    with pp.Client(spki) as client, client.request(challenge) as pending:
        request = pending.token_request
        assert len(request) == pp.TOKEN_REQUEST_LEN
        response = issuer.issue(request)
        assert len(response) == pp.TOKEN_RESPONSE_LEN
        token = pending.finalize(response)
    assert len(token) == pp.TOKEN_LEN
    authorization = pp.encode_authorization(token)

    with pp.Verifier.from_spki(spki) as verifier:
        verifier.verify_authorization(authorization, challenge)
        verifier.verify(token, challenge)  # verifying records nothing
        redeemer = pp.Redeemer(verifier, store)
    # The redeemer keeps its own reference to the keys: the verifier is closed now.
    with redeemer:
        redeemer.redeem_authorization(authorization, challenge)
        with pytest.raises(pp.AlreadySpent) as caught:
            redeemer.redeem_authorization(authorization, challenge)
        assert caught.value.code == -32021 and caught.value.http_status == 403
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(token, challenge)
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(token)


def test_rocksdb_spends_survive_reopening(issuer: pp.Issuer, challenge: bytes,
                                          tmp_path: Path) -> None:
    token = make_token(issuer, challenge)
    url = f"rocksdb:{tmp_path / 'durable'}"
    with pp.Verifier.from_spki(issuer.public_key) as verifier:
        with pp.Redeemer(verifier, url) as redeemer:
            redeemer.redeem(token, challenge)
        with pp.Redeemer(verifier, url) as redeemer:
            with pytest.raises(pp.AlreadySpent):
                redeemer.redeem(token, challenge)


def test_fresh_issuer_and_tokens_are_unlinkable(challenge: bytes) -> None:
    with pp.Issuer.generate() as issuer:
        assert len(issuer.public_key) == pp.PUBLIC_KEY_LEN
        a, b = make_token(issuer, challenge), make_token(issuer, challenge)
        assert a[2:34] != b[2:34]  # fresh nonces
        with pp.Verifier.from_spki(issuer.public_key) as verifier:
            verifier.verify(a, challenge)
            verifier.verify(b, challenge)


def test_issue_blinded_bare_message(issuer: pp.Issuer, challenge: bytes) -> None:
    with pp.Client(issuer.public_key) as client, client.request(challenge) as pending:
        request = pending.token_request
        response = issuer.issue_blinded(issuer.token_key_id, request[3:])
        assert len(request[3:]) == pp.BLINDED_MSG_LEN
        token = pending.finalize(response)
    with pp.Verifier.from_spki(issuer.public_key) as verifier:
        verifier.verify(token, challenge)


def test_challenge_encoding() -> None:
    assert pp.encode_challenge("issuer.example") == b"\x00\x02\x00\x0eissuer.example\x00\x00\x00"
    long_name = "i" * 300  # longer than the first guess at the buffer: still one exact size
    assert len(pp.encode_challenge(long_name, origin_info="o" * 1000)) == 2 + 2 + 300 + 1 + 2 + 1000
    assert pp.encode_challenge("issuer.example", token_type=1)[:2] == b"\x00\x01"


# ---------------------------------------------------------------------------------------------
# Handles


def test_context_managers_close(issuer: pp.Issuer) -> None:
    with pp.Verifier.from_spki(issuer.public_key) as verifier:
        assert not verifier.closed
        assert "open" in repr(verifier)
    assert verifier.closed and "closed" in repr(verifier)
    verifier.close()  # idempotent
    with pytest.raises(pp.ClosedHandleError):
        with verifier:
            pass


def test_garbage_collected_handles_are_freed(issuer: pp.Issuer, challenge: bytes) -> None:
    spki = issuer.public_key
    for _ in range(200):
        verifier = pp.Verifier.from_spki(spki)
        pp.Redeemer(verifier, "memory:")
        client = pp.Client(spki)
        client.request(challenge)
        del verifier, client
    gc.collect()


def test_handles_are_not_constructed_directly_or_pickled(issuer: pp.Issuer) -> None:
    import pickle
    with pytest.raises(TypeError):
        pp.Verifier()
    with pytest.raises(TypeError):
        pp.Issuer()
    with pytest.raises(TypeError):
        pp.PendingToken()
    with pytest.raises(TypeError):
        pickle.dumps(issuer)
