"""The binding against the header, the RFC 9578 type 2 vectors, and whole issuance cycles."""

from __future__ import annotations

import base64
import ctypes
import gc
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

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


def header_prototypes() -> Dict[str, Tuple[str, List[str]]]:
    """Every ``pp_`` function of the header: its return type and its parameters' types, each
    normalized to single spaces with the stars joined ("const uint8_t*", "struct pp_client**")."""
    def normalize(c_type: str) -> str:
        return re.sub(r"\s*\*", "*", " ".join(c_type.split()))

    prototypes: Dict[str, Tuple[str, List[str]]] = {}
    for match in re.finditer(r"^(?P<ret>[A-Za-z_][\w ]*?\s*\**)\s*\b(?P<name>pp_\w+)\((?P<params>[^)]*)\);",
                             header_text(), re.M):
        params = [p.strip() for p in match.group("params").split(",")]
        if params == ["void"]:
            params = []
        types = []
        for param in params:
            typed = re.fullmatch(r"(?P<type>.*?[\s*])(?P<name>\w+)", param, re.S)
            assert typed, f"{match.group('name')}: cannot read the parameter {param!r}"
            types.append(normalize(typed.group("type")))
        assert match.group("name") not in prototypes
        prototypes[match.group("name")] = (normalize(match.group("ret")), types)
    return prototypes


def expected_ctype(c_type: str) -> Any:
    """The ctypes type the binding must declare for a C type, by its conventions: inputs as
    c_char_p (bytes or None), outputs as pointers to c_uint8 / c_char / c_size_t, handles as
    pointers to their own struct type. An unknown C type fails: the table must grow with the
    header."""
    table = {
        "size_t": ctypes.c_size_t,
        "int": ctypes.c_int,
        "uint16_t": ctypes.c_uint16,
        "enum pp_result": ctypes.c_int,
        "const uint8_t*": ctypes.c_char_p,  # input buffers, with a length
        "const char*": ctypes.c_char_p,  # input text, with a length or NUL-terminated
        "uint8_t*": ctypes.POINTER(ctypes.c_uint8),  # output buffers
        "char*": ctypes.POINTER(ctypes.c_char),
        "size_t*": ctypes.POINTER(ctypes.c_size_t),
        "uint16_t*": ctypes.POINTER(ctypes.c_uint16),
        "const uint64_t*": ctypes.POINTER(ctypes.c_uint64),
        "uint64_t*": ctypes.POINTER(ctypes.c_uint64),  # output arrays of uint64_t
    }
    if c_type in table:
        return table[c_type]
    handle = re.fullmatch(r"(?:const )?struct (pp_\w+)(\*+)", c_type)
    assert handle, f"no ctypes type for the C type {c_type!r}"
    declared: Any = getattr(_native, handle.group(1))  # the opaque struct class of _native
    for _ in handle.group(2):
        declared = ctypes.POINTER(declared)
    return declared


def expected_restype(c_type: str) -> Any:
    return None if c_type == "void" else expected_ctype(c_type)


def declaration_mismatches(name: str, prototype: Tuple[str, List[str]], function: Any) -> List[str]:
    """How a ctypes function's declaration differs from its C prototype (empty: it matches)."""
    ret, params = prototype
    problems = []
    if function.restype is not expected_restype(ret):
        problems.append(f"{name}: restype {function.restype} for {ret!r}")
    argtypes = function.argtypes
    if argtypes is None or len(argtypes) != len(params):
        problems.append(f"{name}: {argtypes} declared for {len(params)} parameters {params}")
        return problems
    for index, (declared, c_type) in enumerate(zip(argtypes, params)):
        if declared is not expected_ctype(c_type):
            problems.append(f"{name}: parameter {index} is {declared}, {c_type!r} in the header")
    return problems


def test_every_header_function_is_declared() -> None:
    prototypes = header_prototypes()
    # The prototype parser saw every function the header declares.
    assert set(prototypes) == set(re.findall(r"^\S.*?\b(pp_\w+)\(", header_text(), re.M))
    assert set(prototypes) == set(_native._PROTOTYPES)
    problems = []
    for name, prototype in prototypes.items():
        problems += declaration_mismatches(name, prototype, getattr(_native.lib, name))
    assert problems == []


class _Declared:
    def __init__(self, restype: Any, argtypes: List[Any]) -> None:
        self.restype, self.argtypes = restype, argtypes


def test_declaration_check_catches_wrong_declarations() -> None:
    name = "pp_issuer_issue"
    prototype = header_prototypes()[name]
    assert prototype == ("enum pp_result", ["const struct pp_issuer*", "const uint8_t*", "size_t",
                                            "uint8_t*", "size_t", "size_t*"])
    restype, argtypes = _native._PROTOTYPES[name]
    assert declaration_mismatches(name, prototype, _Declared(restype, list(argtypes))) == []
    wrong = [
        (restype, argtypes[:-1]),  # a parameter missing
        (restype, argtypes + [ctypes.c_size_t]),  # one too many
        (None, argtypes),  # void for enum pp_result
        (ctypes.c_char_p, argtypes),
        (restype, [_native.ClientPtr] + argtypes[1:]),  # another handle type
        (restype, [ctypes.c_void_p] + argtypes[1:]),  # an untyped handle
        (restype, argtypes[:2] + [ctypes.c_uint32] + argtypes[3:]),  # uint32 for size_t
        (restype, argtypes[:3] + [ctypes.c_char_p] + argtypes[4:]),  # input type for an output
        (restype, argtypes[:5] + [ctypes.POINTER(ctypes.c_uint32)]),  # uint32_t * for size_t *
    ]
    for declared in wrong:
        assert declaration_mismatches(name, prototype, _Declared(*declared)), declared
    # Out-handles are pointers to the handle pointer; pp_version answers a const char *.
    assert expected_ctype("struct pp_client**") is ctypes.POINTER(_native.ClientPtr)
    assert expected_restype(header_prototypes()["pp_version"][0]) is ctypes.c_char_p
    assert header_prototypes()["pp_client_free"] == ("void", ["struct pp_client*"])
    # The test-only pp_test_panic is in libprivacypass_testing, not in the production header.
    assert "pp_test_panic" not in header_prototypes()


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


def load_testing_library() -> ctypes.CDLL:
    """libprivacypass_testing (libprivacypass plus pp_test_panic), never in the package: the
    path make test-python gives in PRIVACYPASS_TESTING_LIBRARY, else beside the library the
    package loaded from the target directory."""
    path = os.environ.get("PRIVACYPASS_TESTING_LIBRARY") or str(
        Path(pp.library_path()).with_name("libprivacypass_testing.so"))
    assert os.path.isfile(path), (
        f"{path} is missing: build the workspace (make build), or set PRIVACYPASS_TESTING_LIBRARY")
    lib = ctypes.CDLL(path)
    lib.pp_test_panic.restype = ctypes.c_int
    lib.pp_test_panic.argtypes = []
    lib.pp_version.restype = ctypes.c_char_p
    lib.pp_version.argtypes = []
    return lib


def test_panic_comes_back_as_a_code() -> None:
    lib = load_testing_library()
    code = lib.pp_test_panic()
    assert code == pp.LibraryPanic().code
    assert isinstance(pp.errors.error_for(code), pp.LibraryPanic)
    # The library that panicked keeps working, and so does the package's.
    assert lib.pp_test_panic() == code
    assert lib.pp_version() == pp.VERSION.encode()
    assert pp.library_version() == pp.VERSION
    issuer = pp.Issuer.generate()
    assert len(issuer.public_key) == pp.PUBLIC_KEY_LEN


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

    with pp.Verifier.from_spki(v["pkS"]) as verifier, \
            pp.Redeemer(verifier, "memory:") as redeemer:
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
# A redeemer's keys replaced, and a directory's keys with their not-before


def test_set_keys_swaps_the_keys_and_keeps_the_spends(issuer: pp.Issuer,
                                                      challenge: bytes) -> None:
    with pp.Issuer.generate() as other, \
            pp.Verifier.from_spki(issuer.public_key) as only_a, \
            pp.Verifier.from_spki(other.public_key) as only_b, \
            pp.Redeemer(only_a, "memory:") as redeemer:
        a1, a2, a3 = (make_token(issuer, challenge) for _ in range(3))
        b1 = make_token(other, challenge)
        redeemer.redeem(a1, challenge)
        with pytest.raises(pp.VerificationFailed):
            redeemer.redeem(b1, challenge)  # not spent: verification comes first
        # Both keys: b verifies now, and a's spent token stays spent.
        with pp.Verifier.from_pem(spki_pem(issuer.public_key) + spki_pem(other.public_key)) \
                as both:
            redeemer.set_keys(both)
        # The redeemer keeps its own reference to the keys: `both` is closed now.
        redeemer.redeem(b1, challenge)
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(a1, challenge)
        redeemer.redeem_authorization(pp.encode_authorization(a2), challenge)
        # Only b: a's tokens, fresh or spent, fail verification; b's spend stays.
        redeemer.set_keys(only_b)
        with pytest.raises(pp.VerificationFailed):
            redeemer.redeem(a3, challenge)
        with pytest.raises(pp.VerificationFailed):
            redeemer.redeem(a1, challenge)
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(b1, challenge)
        # Back to a: a3 was never spent, a1 still is.
        redeemer.set_keys(only_a)
        redeemer.redeem(a3, challenge)
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(a1, challenge)
        with pytest.raises(TypeError):
            redeemer.set_keys(issuer)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            redeemer.set_keys(redeemer)  # type: ignore[arg-type]


def test_set_keys_on_a_redeemer_from_an_rsa_issuer(issuer: pp.Issuer, challenge: bytes) -> None:
    """A redeemer made from a type 2 issuer verifies with public keys: they can be replaced."""
    with pp.Issuer.generate() as other, pp.Redeemer.from_issuer(issuer, "memory:") as redeemer, \
            pp.Verifier.from_spki(other.public_key) as only_b:
        a, b = make_token(issuer, challenge), make_token(other, challenge)
        redeemer.redeem(a, challenge)
        redeemer.set_keys(only_b)
        redeemer.redeem(b, challenge)
        with pytest.raises(pp.VerificationFailed):
            redeemer.redeem(make_token(issuer, challenge), challenge)


def directory_entry(token_type: int, key: bytes, not_before: Optional[int]) -> Dict[str, Any]:
    entry: Dict[str, Any] = {"token-type": token_type, "token-key": b64url(key, pad=False)}
    if not_before is not None:
        entry["not-before"] = not_before
    return entry


def test_directory_token_keys_and_not_before(issuer: pp.Issuer) -> None:
    r255 = pp.TOKEN_TYPE_VOPRF_RISTRETTO255
    with pp.Issuer.generate() as next_key, pp.Issuer.generate() as third, \
            pp.Issuer.generate_voprf(r255) as voprf:
        a, b, c, v = issuer.public_key, next_key.public_key, third.public_key, voprf.public_key
        # A rotating issuer's directory: the next key first with its start, then the issuing
        # one; the next key listed once more counts once, at its first listing; a key without
        # a not-before gives 0; the other type's key is not among type 2's.
        document = json.dumps({"issuer-request-uri": "/token-request", "token-keys": [
            directory_entry(2, b, 4000000000),
            directory_entry(r255, v, 42),
            directory_entry(2, a, 1700000000),
            directory_entry(2, b, 5),
            directory_entry(2, c, None),
        ]})
        assert pp.directory_token_keys(document, pp.TOKEN_TYPE_BLIND_RSA) == [b, a, c]
        assert pp.directory_not_before(document, pp.TOKEN_TYPE_BLIND_RSA) == \
            [4000000000, 1700000000, 0]
        assert pp.directory_not_before(document.encode(), 2) == [4000000000, 1700000000, 0]
        assert pp.directory_token_keys(document, r255) == [v]
        assert pp.directory_not_before(document, r255) == [42]
        # No key of that type: nothing, and no error.
        assert pp.directory_token_keys(document, pp.TOKEN_TYPE_VOPRF_P384) == []
        assert pp.directory_not_before(document, pp.TOKEN_TYPE_VOPRF_P384) == []
        # The verifier of that body: the key starting in 2096 verifies nothing yet.
        challenge = pp.encode_challenge("issuer.example")
        with pp.Verifier.from_directory(document) as verifier:
            verifier.verify(make_token(issuer, challenge), challenge)
            verifier.verify(make_token(third, challenge), challenge)
            with pytest.raises(pp.VerificationFailed):
                verifier.verify(make_token(next_key, challenge), challenge)


def test_directory_not_before_grows_its_buffer() -> None:
    """More keys than the first buffer holds: the library answers BUFFER_TOO_SMALL with the
    count, and the call is made again."""
    r255 = pp.TOKEN_TYPE_VOPRF_RISTRETTO255
    issuers = [pp.Issuer.generate_voprf(r255) for _ in range(20)]
    try:
        keys = [i.public_key for i in issuers]
        document = json.dumps({"issuer-request-uri": "/token-request", "token-keys": [
            directory_entry(r255, key, 1000 + n) for n, key in enumerate(keys)]})
        assert pp.directory_not_before(document, r255) == [1000 + n for n in range(20)]
        assert pp.directory_token_keys(document, r255) == keys
    finally:
        for i in issuers:
            i.close()


def test_directory_helpers_errors(issuer: pp.Issuer) -> None:
    good = directory_json(issuer.public_key)
    for function in (pp.directory_token_keys, pp.directory_not_before):
        with pytest.raises(pp.UnsupportedToken):
            function(good, 3)
        with pytest.raises(pp.InvalidInput):
            function("[]", 2)
        with pytest.raises(pp.InvalidInput):
            function("not json", 2)
        with pytest.raises(pp.InvalidInput):
            function('{"token-keys": [{"token-type": 2, "token-key": "AA", "not-before": "0"}]}',
                     2)
        with pytest.raises(pp.InvalidKey):
            function('{"token-keys": [{"token-type": 2, "token-key": "AAAA"}]}', 2)
        with pytest.raises(ValueError):
            function(good, 0x10002)  # not a uint16: refused, not truncated to 2
        with pytest.raises(TypeError):
            function(good, "2")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            function(42, 2)  # type: ignore[arg-type]
    # directory_json's type 1 entry ("AAAA") is no valid key of that type.
    with pytest.raises(pp.InvalidKey):
        pp.directory_not_before(good, pp.TOKEN_TYPE_VOPRF_P384)
    assert pp.directory_not_before(good, 2) == [0]
    assert pp.directory_not_before(directory_json(issuer.public_key, 7), 2) == [7]
    assert {"directory_token_keys", "directory_not_before"} <= set(pp.__all__)


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


HANDLE_KINDS = ["Verifier", "Redeemer", "Issuer", "Client", "PendingToken", "PendingBatch",
                "PendingGenericBatch"]


@pytest.fixture()
def frees(monkeypatch: pytest.MonkeyPatch) -> Dict[str, List[int]]:
    """Each handle class's C free function, wrapped to record the address of every handle it
    frees (by kind), then to free it."""
    gc.collect()  # the garbage of earlier tests is freed before recording starts
    freed: Dict[str, List[int]] = {kind: [] for kind in HANDLE_KINDS}
    for kind in HANDLE_KINDS:
        cls = getattr(pp, kind)

        def recording(ptr: Any, kind: str = kind, free: Any = cls._free) -> None:
            freed[kind].append(ctypes.cast(ptr, ctypes.c_void_p).value)
            free(ptr)

        monkeypatch.setattr(cls, "_free", staticmethod(recording))
    return freed


def new_handle(kind: str, issuer: pp.Issuer, challenge: bytes, pem: bytes) -> Any:
    spki = issuer.public_key
    if kind == "Verifier":
        return pp.Verifier.from_spki(spki)
    if kind == "Redeemer":
        with pp.Verifier.from_spki(spki) as verifier:
            return pp.Redeemer(verifier, "memory:")
    if kind == "Issuer":
        return pp.Issuer.from_pem(pem)
    if kind == "Client":
        return pp.Client(spki)
    if kind == "PendingBatch":  # an amortized batch: a VOPRF key's
        r255 = pp.TOKEN_TYPE_VOPRF_RISTRETTO255
        with pp.Issuer.generate_voprf(r255) as voprf, \
                pp.Client.voprf(r255, voprf.public_key) as client:
            return client.request_amortized(pp.encode_challenge("issuer.example",
                                                                token_type=r255), 2)
    with pp.Client(spki) as client:
        if kind == "PendingGenericBatch":
            with client.request(challenge) as pending:
                return pp.PendingGenericBatch([pending])
        return client.request(challenge)


@pytest.mark.parametrize("drop", ["forgotten", "in a cycle", "closed"])
@pytest.mark.parametrize("kind", HANDLE_KINDS)
def test_each_handle_is_freed_exactly_once(kind: str, drop: str, frees: Dict[str, List[int]],
                                           issuer: pp.Issuer, challenge: bytes,
                                           vectors: List[Dict[str, bytes]]) -> None:
    """A handle dropped without close() is freed by the collector, once; a closed one by
    close(), once, and never again when it is collected."""
    handle = new_handle(kind, issuer, challenge, vectors[0]["skS"])
    assert type(handle).__name__ == kind
    address = ctypes.cast(handle._ptr, ctypes.c_void_p).value
    assert address and frees[kind] == []
    gc.disable()  # no collection but the ones below
    try:
        if drop == "closed":
            handle.close()
            assert frees[kind] == [address]
            handle.close()
            del handle
        elif drop == "in a cycle":
            handle.itself = handle  # only the cycle collector can free it now
            del handle
            assert frees[kind] == []
        else:
            del handle  # the last reference: freed at once
            assert frees[kind] == [address]
        gc.collect()
    finally:
        gc.enable()
    gc.collect()
    assert frees[kind] == [address]


def test_handles_are_not_constructed_directly_or_pickled(issuer: pp.Issuer) -> None:
    import pickle
    with pytest.raises(TypeError):
        pp.Verifier()
    with pytest.raises(TypeError):
        pp.Issuer()
    with pytest.raises(TypeError):
        pp.PendingToken()
    with pytest.raises(TypeError):
        pp.PendingBatch()
    with pytest.raises(TypeError):
        pickle.dumps(issuer)
