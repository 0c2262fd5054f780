"""The privately verifiable token types, 0x0001 (VOPRF P-384) and 0x0005 (VOPRF ristretto255):
every known-answer vector of tests/vectors (the RFC 9578 type 1 file, the batched-tokens
implementation's two private files and the batched-tokens draft's type 5 file), whole cycles with fresh keys, the error paths,
handles, threads, and a cycle against a running privacypassd."""

from __future__ import annotations

import base64
import ctypes
import gc
import json
import pickle
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import privacypass as pp
from conftest import VOPRF_VECTOR_FILES, Daemon, load_voprf_vectors

P384, R255 = pp.TOKEN_TYPE_VOPRF_P384, pp.TOKEN_TYPE_VOPRF_RISTRETTO255
VOPRF_TYPES = [P384, R255]
NAMES = {P384: "p384", R255: "ristretto255"}

# The sizes of each type, from the header's constants.
SIZES: Dict[int, Dict[str, int]] = {
    P384: {"public_key": pp.VOPRF_P384_PUBLIC_KEY_LEN, "scalar": pp.VOPRF_P384_SCALAR_LEN,
           "request": pp.VOPRF_P384_TOKEN_REQUEST_LEN,
           "response": pp.VOPRF_P384_TOKEN_RESPONSE_LEN, "token": pp.VOPRF_P384_TOKEN_LEN},
    R255: {"public_key": pp.VOPRF_RISTRETTO255_PUBLIC_KEY_LEN,
           "scalar": pp.VOPRF_RISTRETTO255_SCALAR_LEN,
           "request": pp.VOPRF_RISTRETTO255_TOKEN_REQUEST_LEN,
           "response": pp.VOPRF_RISTRETTO255_TOKEN_RESPONSE_LEN,
           "token": pp.VOPRF_RISTRETTO255_TOKEN_LEN},
}
# The core's key file labels (what privacypassd keys generate writes).
KEY_FILE_LABELS = {P384: "PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY",
                   R255: "PRIVACYPASS VOPRF RISTRETTO255-SHA512 PRIVATE KEY"}

# Every vector of every file: (file, token type, index), for parametrize ids.
VECTOR_CASES: List[Tuple[str, int, int]] = [
    (name, token_type, index)
    for name, token_type in VOPRF_VECTOR_FILES
    for index in range(len(load_voprf_vectors(name)))
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_file(token_type: int, scalar: bytes) -> str:
    label = KEY_FILE_LABELS[token_type]
    body = base64.b64encode(scalar).decode("ascii")
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def challenge_for(token_type: int, **kwargs: Any) -> bytes:
    return pp.encode_challenge("issuer.example", token_type=token_type, **kwargs)


def voprf_token(issuer: pp.Issuer, challenge: bytes) -> bytes:
    with pp.Client.voprf(issuer.token_type, issuer.public_key) as client, \
            client.request(challenge) as pending:
        return pending.finalize(issuer.issue(pending.token_request))


@pytest.fixture(scope="module", params=VOPRF_TYPES, ids=lambda t: NAMES[t])
def voprf_issuer(request: pytest.FixtureRequest) -> Any:
    with pp.Issuer.generate_voprf(request.param) as issuer:
        yield issuer


# ---------------------------------------------------------------------------------------------
# Known-answer vectors


@pytest.mark.parametrize("name,token_type", VOPRF_VECTOR_FILES)
def test_vector_files(name: str, token_type: int) -> None:
    vectors = load_voprf_vectors(name)
    # The draft's file has ten (its last five are batched-private_ristretto255_rs.json's).
    assert len(vectors) == (10 if name.startswith("batched-tokens-draft") else 5)
    for v in vectors:
        assert {"skS", "pkS", "token_challenge", "nonce", "blind", "token_request",
                "token_response", "token"} <= set(v)
        for field in ("token_challenge", "token_request", "token"):
            assert int.from_bytes(v[field][:2], "big") == token_type, (name, field)


@pytest.mark.parametrize("name,token_type,index", VECTOR_CASES,
                         ids=[f"{n.rsplit('.', 1)[0]}-{i}" for n, _, i in VECTOR_CASES])
def test_vector(name: str, token_type: int, index: int) -> None:
    v = load_voprf_vectors(name)[index]
    sizes = SIZES[token_type]
    challenge, token = v["token_challenge"], v["token"]
    assert len(v["skS"]) == sizes["scalar"] and len(v["blind"]) == sizes["scalar"]

    # The issuer from the vector's scalar, and from the same scalar as a key file.
    with pp.Issuer.from_scalar(token_type, v["skS"]) as issuer, \
            pp.Issuer.from_pem(key_file(token_type, v["skS"])) as from_pem:
        assert issuer.token_type == from_pem.token_type == token_type
        assert issuer.public_key == from_pem.public_key == v["pkS"]
        assert len(issuer.public_key) == sizes["public_key"]
        # token = type (2) | nonce (32) | challenge_digest (32) | token_key_id (32) | authenticator
        assert issuer.token_key_id == from_pem.token_key_id == token[66:98]
        with pp.Issuer.from_scalar(token_type, bytearray(v["skS"])) as again:
            assert again.public_key == v["pkS"]

        # The client reproduces the TokenRequest from the vector's nonce and blind (no salt),
        # and finalizes the vector's TokenResponse into its Token.
        with pp.Client.voprf(token_type, v["pkS"]) as client:
            with client.request_with_randomness(challenge, nonce=v["nonce"],
                                                blind=v["blind"]) as pending:
                assert pending.token_request == v["token_request"]
                assert len(pending.token_request) == sizes["request"]
                assert pending.finalize(v["token_response"]) == token
                assert len(token) == sizes["token"]
                assert pending.finalize(bytearray(v["token_response"])) == token  # again

                # The issuer's own answer (a fresh DLEQ proof) finalizes into the same token:
                # the VOPRF output is deterministic.
                response = issuer.issue(v["token_request"])
                assert len(response) == sizes["response"] == len(v["token_response"])
                assert pending.finalize(response) == token
                assert pending.finalize(from_pem.issue(v["token_request"])) == token
            # The salt given explicitly empty is the same request.
            with client.request_with_randomness(challenge, nonce=v["nonce"], salt=b"",
                                                blind=v["blind"]) as pending:
                assert pending.token_request == v["token_request"]

        authorization = pp.encode_authorization(token)
        padded = base64.urlsafe_b64encode(token).decode("ascii")
        assert authorization == f'PrivateToken token="{padded}"'
        assert pp.parse_authorization(authorization) == token

        # Redeemed once with the issuer's private key, bound to its challenge.
        with pp.Redeemer.from_issuer(issuer, "memory:") as redeemer:
            with pytest.raises(pp.VerificationFailed):
                redeemer.redeem(token, challenge_for(token_type, origin_info="elsewhere.example"))
            redeemer.redeem(token, challenge)
            with pytest.raises(pp.AlreadySpent):
                redeemer.redeem(token, challenge)
            with pytest.raises(pp.AlreadySpent):
                redeemer.redeem_authorization(authorization)
        with pp.Redeemer.from_issuer(from_pem, "memory:") as redeemer:
            redeemer.redeem_authorization(authorization, challenge)
            with pytest.raises(pp.AlreadySpent):
                redeemer.redeem(token)

    # Public keys cannot verify it: PrivateTokenType, from a Verifier and from a Redeemer of one.
    with pp.Issuer.generate() as rsa, pp.Verifier.from_spki(rsa.public_key) as verifier, \
            pp.Redeemer(verifier, "memory:") as redeemer:
        for attempt in (lambda: verifier.verify(token), lambda: verifier.verify(token, challenge),
                        lambda: verifier.verify_authorization(authorization),
                        lambda: redeemer.redeem(token, challenge),
                        lambda: redeemer.redeem_authorization(authorization)):
            with pytest.raises(pp.PrivateTokenType) as caught:
                attempt()
            assert caught.value.code == 7 and isinstance(caught.value, ValueError)


# ---------------------------------------------------------------------------------------------
# The whole protocol with fresh keys


@pytest.mark.parametrize("store", ["memory:", "memory:1000", "rocksdb"])
@pytest.mark.parametrize("token_type", VOPRF_TYPES, ids=lambda t: NAMES[t])
def test_full_cycle(token_type: int, store: str, tmp_path: Path) -> None:
    if store == "rocksdb":
        store = f"rocksdb:{tmp_path / 'spends'}"
    sizes = SIZES[token_type]
    context = bytes([0x5A]) * pp.REDEMPTION_CONTEXT_LEN
    challenge = challenge_for(token_type, redemption_context=context,
                              origin_info=["origin.example", "other.example"])
    assert challenge[:2] == token_type.to_bytes(2, "big")

    with pp.Issuer.generate_voprf(token_type) as issuer:
        assert issuer.token_type == token_type
        token_key = issuer.public_key
        assert len(token_key) == sizes["public_key"]
        assert len(issuer.token_key_id) == pp.TOKEN_KEY_ID_LEN
        www = pp.www_authenticate(challenge, token_key, max_age=60)
        assert f'token-key="{b64url(token_key)}' in www

        with pp.Client.voprf(token_type, token_key) as client:
            tokens = []
            for _ in range(2):
                with client.request(challenge) as pending:
                    request = pending.token_request
                    assert len(request) == sizes["request"]
                    assert request[:2] == challenge[:2]
                    response = issuer.issue(request)
                    assert len(response) == sizes["response"]
                    tokens.append(pending.finalize(response))
        redeemer = pp.Redeemer.from_issuer(issuer, store)
    # The redeemer keeps its own reference to the key: the issuer is closed now.
    assert issuer.closed
    token, second = tokens
    assert len(token) == sizes["token"] and token[:2] == challenge[:2]
    assert token[2:34] != second[2:34]  # fresh nonces
    with redeemer:
        with pytest.raises(pp.VerificationFailed):  # refused before anything is recorded
            redeemer.redeem(token, challenge_for(token_type))
        redeemer.redeem_authorization(pp.encode_authorization(token), challenge)
        with pytest.raises(pp.AlreadySpent) as caught:
            redeemer.redeem(token, challenge)
        assert caught.value.code == -32021 and caught.value.http_status == 403
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(token)
        redeemer.redeem(second)  # another token of the same key


@pytest.mark.parametrize("token_type", VOPRF_TYPES, ids=lambda t: NAMES[t])
def test_rocksdb_spends_survive_reopening(token_type: int, tmp_path: Path) -> None:
    challenge = challenge_for(token_type)
    url = f"rocksdb:{tmp_path / 'durable'}"
    with pp.Issuer.generate_voprf(token_type) as issuer:
        token = voprf_token(issuer, challenge)
        with pp.Redeemer.from_issuer(issuer, url) as redeemer:
            redeemer.redeem(token, challenge)
        with pp.Redeemer.from_issuer(issuer, url) as redeemer:
            with pytest.raises(pp.AlreadySpent):
                redeemer.redeem(token, challenge)


def test_both_types_share_one_store(tmp_path: Path) -> None:
    url = f"rocksdb:{tmp_path / 'shared'}"
    with pp.Issuer.generate_voprf(P384) as p384, pp.Issuer.generate_voprf(R255) as r255:
        tokens = [voprf_token(p384, challenge_for(P384)), voprf_token(r255, challenge_for(R255))]
        with pp.Redeemer.from_issuer(p384, url) as for_p384:
            for_p384.redeem(tokens[0])
            with pytest.raises(pp.UnsupportedToken):  # another type: no key of it here
                for_p384.redeem(tokens[1])
        with pp.Redeemer.from_issuer(r255, url) as for_r255:
            for_r255.redeem(tokens[1])
            with pytest.raises(pp.AlreadySpent):
                for_r255.redeem(tokens[1])


def test_redeemer_from_an_rsa_issuer(issuer: pp.Issuer, challenge: bytes) -> None:
    """For a type 2 issuer, Redeemer.from_issuer verifies with the public key, as a Redeemer of
    a Verifier does."""
    assert issuer.token_type == pp.TOKEN_TYPE_BLIND_RSA
    with pp.Client(issuer.public_key) as client, client.request(challenge) as pending:
        token = pending.finalize(issuer.issue(pending.token_request))
    with pp.Redeemer.from_issuer(issuer, "memory:") as redeemer:
        redeemer.redeem(token, challenge)
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(token, challenge)
        with pp.Issuer.generate_voprf(P384) as voprf:
            with pytest.raises(pp.PrivateTokenType):
                redeemer.redeem(voprf_token(voprf, challenge_for(P384)))


def test_constants() -> None:
    assert (pp.TOKEN_TYPE_VOPRF_P384, pp.TOKEN_TYPE_VOPRF_RISTRETTO255) == (1, 5)
    assert pp.TOKEN_TYPE_BLIND_RSA == 2
    for name in ("TOKEN_TYPE_VOPRF_P384", "TOKEN_TYPE_VOPRF_RISTRETTO255",
                 "TOKEN_TYPE_BLIND_RSA"):
        assert name in pp.__all__


# ---------------------------------------------------------------------------------------------
# Error paths


def test_unsupported_token_types() -> None:
    scalar = bytes(47) + b"\x01"
    attempts = [
        lambda: pp.Issuer.from_scalar(pp.TOKEN_TYPE_BLIND_RSA, scalar),
        lambda: pp.Issuer.from_scalar(3, scalar),
        lambda: pp.Issuer.from_scalar(0xFFFF, scalar),
        lambda: pp.Issuer.generate_voprf(pp.TOKEN_TYPE_BLIND_RSA),
        lambda: pp.Issuer.generate_voprf(0),
        lambda: pp.Client.voprf(pp.TOKEN_TYPE_BLIND_RSA, b"\x02" * 49),
        lambda: pp.Client.voprf(4, b"\x02" * 32),
    ]
    for attempt in attempts:
        with pytest.raises(pp.UnsupportedToken) as caught:
            attempt()
        # A protocol error (-32022, HTTP 400), not one of the library's own argument codes:
        # by the package's rule it is not a ValueError.
        assert caught.value.code == -32022 and caught.value.http_status == 400
        assert not isinstance(caught.value, ValueError)


def test_token_type_arguments_are_checked() -> None:
    for bad in (-1, 0x10000, 0x10001):  # ctypes would truncate these to a uint16
        with pytest.raises(ValueError, match="uint16"):
            pp.Issuer.generate_voprf(bad)
        with pytest.raises(ValueError, match="uint16"):
            pp.Issuer.from_scalar(bad, bytes(48))
        with pytest.raises(ValueError, match="uint16"):
            pp.Client.voprf(bad, bytes(49))
    for wrong in ("1", 1.0, None, True):
        with pytest.raises(TypeError):
            pp.Issuer.generate_voprf(wrong)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            pp.Client.voprf(wrong, bytes(49))  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            pp.Issuer.from_scalar(wrong, bytes(48))  # type: ignore[arg-type]


@pytest.mark.parametrize("token_type", VOPRF_TYPES, ids=lambda t: NAMES[t])
def test_bad_scalars(token_type: int) -> None:
    n = SIZES[token_type]["scalar"]
    bad = [b"", bytes(n), b"\xff" * n, b"\x01" * (n - 1), bytes(n + 1)]
    if token_type == P384:
        bad.append(b"\x01" + bytes(n))  # a valid scalar with a leading byte more
    else:
        bad.append(b"\x01" + bytes(n - 1) + b"\x00")  # little-endian 1, one byte more
    for scalar in bad:
        with pytest.raises(pp.InvalidKey) as caught:
            pp.Issuer.from_scalar(token_type, scalar)
        assert isinstance(caught.value, ValueError)
        assert caught.value.function == "pp_issuer_new_from_scalar"
    with pytest.raises(TypeError):
        pp.Issuer.from_scalar(token_type, "00" * n)  # type: ignore[arg-type]
    # The smallest scalar is a key (big-endian 1 for P-384, little-endian 1 for ristretto255).
    one = bytes(n - 1) + b"\x01" if token_type == P384 else b"\x01" + bytes(n - 1)
    with pp.Issuer.from_scalar(token_type, one) as issuer:
        assert len(issuer.public_key) == SIZES[token_type]["public_key"]


def test_key_file_of_the_wrong_label_is_not_a_key() -> None:
    scalar = bytes(31) + b"\x07"
    pem = key_file(R255, scalar).replace("RISTRETTO255-SHA512", "RISTRETTO255-SHA384")
    with pytest.raises(pp.InvalidKey):
        pp.Issuer.from_pem(pem)


@pytest.mark.parametrize("token_type", VOPRF_TYPES, ids=lambda t: NAMES[t])
def test_bad_public_keys(token_type: int, issuer: pp.Issuer) -> None:
    n = SIZES[token_type]["public_key"]
    with pp.Issuer.generate_voprf(token_type) as voprf:
        good = voprf.public_key
    bad = [b"", b"\xff" * n, good[:-1], good + b"\x00", issuer.public_key]
    if token_type == P384:
        bad += [bytes(n), b"\x04" + good[1:]]  # the identity's tag; uncompressed tag, short
    for public_key in bad:
        with pytest.raises(pp.InvalidKey) as caught:
            pp.Client.voprf(token_type, public_key)
        assert isinstance(caught.value, ValueError)
    with pytest.raises(TypeError):
        pp.Client.voprf(token_type, good.hex())  # type: ignore[arg-type]
    # A VOPRF key is not an RSA SubjectPublicKeyInfo, nor a Verifier's key.
    with pytest.raises(pp.InvalidKey):
        pp.Client(good)
    with pytest.raises(pp.InvalidKey):
        pp.Verifier.from_spki(good)
    # Each type's key is not the other's.
    other = R255 if token_type == P384 else P384
    with pytest.raises(pp.InvalidKey):
        pp.Client.voprf(other, good)


def test_request_errors(voprf_issuer: pp.Issuer) -> None:
    token_type = voprf_issuer.token_type
    n = SIZES[token_type]["scalar"]
    challenge = challenge_for(token_type)
    blind = bytes(n - 1) + b"\x03" if token_type == P384 else b"\x03" + bytes(n - 1)
    nonce = bytes(range(pp.NONCE_LEN))
    with pp.Client.voprf(token_type, voprf_issuer.public_key) as client:
        # A challenge of another type than the client's key.
        for other in (pp.TOKEN_TYPE_BLIND_RSA, R255 if token_type == P384 else P384):
            with pytest.raises(pp.UnsupportedToken):
                client.request(challenge_for(other))
        with pytest.raises(pp.InvalidInput):
            client.request(b"\x00")
        bad_randomness: List[Dict[str, bytes]] = [
            {"nonce": nonce, "salt": bytes(pp.SALT_LEN), "blind": blind},  # VOPRF has no salt
            {"nonce": nonce[:-1], "blind": blind},
            {"nonce": nonce, "blind": blind[:-1]},
            {"nonce": nonce, "blind": bytes(n)},  # zero
            {"nonce": nonce, "blind": b"\xff" * n},  # not canonical
        ]
        for randomness in bad_randomness:
            with pytest.raises(pp.InvalidInput):
                client.request_with_randomness(challenge, **randomness)
        with client.request_with_randomness(challenge, nonce=nonce, blind=blind) as pending:
            token = pending.finalize(voprf_issuer.issue(pending.token_request))
            assert token[2:34] == nonce


def test_issue_and_finalize_errors(voprf_issuer: pp.Issuer, issuer: pp.Issuer) -> None:
    token_type = voprf_issuer.token_type
    sizes = SIZES[token_type]
    challenge = challenge_for(token_type)
    other_key = pp.Issuer.generate_voprf(token_type)
    while other_key.token_key_id[-1] == voprf_issuer.token_key_id[-1]:  # another truncated id
        other_key = pp.Issuer.generate_voprf(token_type)
    with other_key, pp.Client.voprf(token_type, voprf_issuer.public_key) as client, \
            client.request(challenge) as pending:
        request = pending.token_request
        # Requests the issuer does not answer: malformed, for another key, of another type.
        other_type = R255 if token_type == P384 else P384
        with pp.Issuer.generate_voprf(other_type) as wrong_type:
            for issuing, bad in ((voprf_issuer, request[:-1]), (voprf_issuer, request + b"\x00"),
                                 (voprf_issuer, b""), (other_key, request),
                                 (wrong_type, request), (issuer, request)):
                with pytest.raises(pp.UnprocessableBlindedToken):
                    issuing.issue(bad)
        not_an_element = bytearray(request)
        not_an_element[3:] = b"\xff" * (len(request) - 3)
        with pytest.raises(pp.UnprocessableBlindedToken):
            voprf_issuer.issue(bytes(not_an_element))

        response = voprf_issuer.issue(request)
        for wrong_length in (response[:-1], response + b"\x00", b""):
            with pytest.raises(pp.InvalidInput):
                pending.finalize(wrong_length)
        for index in (0, sizes["response"] - 1):  # the evaluated element, then the proof
            tampered = bytearray(response)
            tampered[index] ^= 0x01
            with pytest.raises((pp.VerificationFailed, pp.InvalidInput)):
                pending.finalize(bytes(tampered))
        # A response of another key (for the same blinded element) fails the DLEQ proof.
        other_client_request = bytearray(request)
        other_client_request[2] = other_key.token_key_id[-1]
        forged = other_key.issue(bytes(other_client_request))
        with pytest.raises(pp.VerificationFailed):
            pending.finalize(forged)
        token = pending.finalize(response)  # the pending token still finalizes

    with pp.Redeemer.from_issuer(voprf_issuer, "memory:") as redeemer:
        for malformed in (token[:-1], token + b"\x00", token[:2]):
            with pytest.raises(pp.InvalidParams):
                redeemer.redeem(malformed)
        tampered_token = bytearray(token)
        tampered_token[-1] ^= 0x01
        with pytest.raises(pp.VerificationFailed):
            redeemer.redeem(bytes(tampered_token))
        redeemer.redeem(token)  # the refusals above recorded nothing
    with pp.Issuer.generate_voprf(token_type) as another, \
            pp.Redeemer.from_issuer(another, "memory:") as redeemer:
        with pytest.raises(pp.VerificationFailed):  # the token of another key
            redeemer.redeem(token)


def test_redeemer_from_issuer_arguments(voprf_issuer: pp.Issuer, tmp_path: Path) -> None:
    with pytest.raises(pp.InvalidStoreUrl):
        pp.Redeemer.from_issuer(voprf_issuer, "nosuchstore:")
    with pytest.raises(ValueError, match="NUL"):
        pp.Redeemer.from_issuer(voprf_issuer, "memory:\0")
    with pytest.raises(TypeError):
        pp.Redeemer.from_issuer(voprf_issuer, b"memory:")  # type: ignore[arg-type]
    with pp.Verifier.from_spki(pp.Issuer.generate().public_key) as verifier:
        with pytest.raises(TypeError):
            pp.Redeemer.from_issuer(verifier, "memory:")  # type: ignore[arg-type]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(pp.StoreUnavailable):
        pp.Redeemer.from_issuer(voprf_issuer, f"rocksdb:{blocker / 'spends'}")


# ---------------------------------------------------------------------------------------------
def test_set_keys_on_a_voprf_redeemer_is_refused(voprf_issuer: pp.Issuer,
                                                 issuer: pp.Issuer) -> None:
    """A redeemer of a VOPRF issuer verifies with its private key, which public keys cannot
    replace: set_keys raises InvalidKey and the redeemer keeps its key and its spends."""
    token_type = voprf_issuer.token_type
    challenge = challenge_for(token_type)
    spent, fresh = voprf_token(voprf_issuer, challenge), voprf_token(voprf_issuer, challenge)
    with pp.Redeemer.from_issuer(voprf_issuer, "memory:") as redeemer, \
            pp.Verifier.from_spki(issuer.public_key) as rsa_keys:
        redeemer.redeem(spent, challenge)
        with pytest.raises(pp.InvalidKey) as caught:
            redeemer.set_keys(rsa_keys)
        assert caught.value.function == "pp_redeemer_set_keys"
        redeemer.redeem(fresh, challenge)
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(spent, challenge)


# Handles


@pytest.mark.parametrize("token_type", VOPRF_TYPES, ids=lambda t: NAMES[t])
def test_closed_handles(token_type: int) -> None:
    challenge = challenge_for(token_type)
    issuer = pp.Issuer.generate_voprf(token_type)
    client = pp.Client.voprf(token_type, issuer.public_key)
    pending = client.request(challenge)
    response = issuer.issue(pending.token_request)
    redeemer = pp.Redeemer.from_issuer(issuer, "memory:")
    for handle in (issuer, client, pending, redeemer):
        assert "open" in repr(handle)
        handle.close()
        assert handle.closed and "closed" in repr(handle)
        handle.close()  # idempotent
        with pytest.raises(pp.ClosedHandleError):
            with handle:
                pass
    for attempt in (lambda: issuer.token_type, lambda: issuer.public_key,
                    lambda: issuer.token_key_id, lambda: issuer.issue(b""),
                    lambda: pp.Redeemer.from_issuer(issuer, "memory:"),
                    lambda: client.request(challenge),
                    lambda: client.request_with_randomness(challenge, nonce=b"", blind=b""),
                    lambda: pending.token_request, lambda: pending.finalize(response),
                    lambda: redeemer.redeem(b""), lambda: redeemer.redeem_authorization("")):
        with pytest.raises(pp.ClosedHandleError):
            attempt()


def test_a_pending_token_outlives_its_client(voprf_issuer: pp.Issuer) -> None:
    token_type = voprf_issuer.token_type
    with pp.Client.voprf(token_type, voprf_issuer.public_key) as client:
        pending = client.request(challenge_for(token_type))
    with pending:
        token = pending.finalize(voprf_issuer.issue(pending.token_request))
    with pp.Redeemer.from_issuer(voprf_issuer, "memory:") as redeemer:
        redeemer.redeem(token)


def test_handles_are_not_constructed_directly_or_pickled(voprf_issuer: pp.Issuer) -> None:
    token_type = voprf_issuer.token_type
    with pp.Client.voprf(token_type, voprf_issuer.public_key) as client, \
            client.request(challenge_for(token_type)) as pending, \
            pp.Redeemer.from_issuer(voprf_issuer, "memory:") as redeemer:
        for handle in (voprf_issuer, client, pending, redeemer):
            with pytest.raises(TypeError, match="cannot be pickled"):
                pickle.dumps(handle)
    with pytest.raises(TypeError):
        pp.Issuer()
    with pytest.raises(TypeError):
        pp.Redeemer()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        pp.Client()  # type: ignore[call-arg]


def test_voprf_handles_are_freed_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Handles made by the VOPRF constructors go through the same free functions as the others,
    once each, whether closed or collected."""
    gc.collect()
    freed: Dict[str, List[int]] = {}
    for kind in ("Issuer", "Client", "PendingToken", "Redeemer"):
        cls = getattr(pp, kind)
        freed[kind] = []

        def recording(ptr: Any, kind: str = kind, free: Any = cls._free) -> None:
            freed[kind].append(ctypes.cast(ptr, ctypes.c_void_p).value)
            free(ptr)

        monkeypatch.setattr(cls, "_free", staticmethod(recording))

    def address(handle: Any) -> int:
        value = ctypes.cast(handle._ptr, ctypes.c_void_p).value
        assert value
        return value

    issuer = pp.Issuer.from_scalar(R255, b"\x09" + bytes(31))
    client = pp.Client.voprf(R255, issuer.public_key)
    pending = client.request(challenge_for(R255))
    redeemer = pp.Redeemer.from_issuer(issuer, "memory:")
    addresses = {"Issuer": address(issuer), "Client": address(client),
                 "PendingToken": address(pending), "Redeemer": address(redeemer)}
    redeemer.close()
    issuer.close()
    del client, pending  # collected
    gc.collect()
    assert freed == {kind: [a] for kind, a in addresses.items()}


# ---------------------------------------------------------------------------------------------
# Threads


THREADS = 8


def test_threads_race_to_redeem_one_type5_token() -> None:
    challenge = challenge_for(R255)
    with pp.Issuer.generate_voprf(R255) as issuer, \
            pp.Redeemer.from_issuer(issuer, "memory:") as redeemer:
        for _ in range(5):
            token = voprf_token(issuer, challenge)
            barrier = threading.Barrier(THREADS)

            def work(_: int) -> str:
                barrier.wait()
                try:
                    redeemer.redeem(token, challenge)
                    return "redeemed"
                except pp.AlreadySpent:
                    return "already spent"

            with ThreadPoolExecutor(THREADS) as pool:
                outcomes = list(pool.map(work, range(THREADS)))
            assert outcomes.count("redeemed") == 1, outcomes
            assert outcomes.count("already spent") == THREADS - 1


def test_issuing_and_redeeming_from_8_threads(voprf_issuer: pp.Issuer) -> None:
    token_type = voprf_issuer.token_type
    challenge = challenge_for(token_type)
    with pp.Client.voprf(token_type, voprf_issuer.public_key) as client, \
            pp.Redeemer.from_issuer(voprf_issuer, "memory:") as redeemer:

        def work(_: int) -> bytes:
            with client.request(challenge) as pending:
                token = pending.finalize(voprf_issuer.issue(pending.token_request))
            redeemer.redeem(token, challenge)
            return token

        with ThreadPoolExecutor(THREADS) as pool:
            tokens = list(pool.map(work, range(THREADS * 3)))
        assert len(set(tokens)) == THREADS * 3
        for token in tokens:
            with pytest.raises(pp.AlreadySpent):
                redeemer.redeem(token)


# ---------------------------------------------------------------------------------------------
# privacypassd with VOPRF keys


def rpc_redeem(daemon: Daemon, token: bytes) -> Tuple[int, Dict[str, Any]]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "redeem",
                       "params": {"token": b64url(token)}}).encode()
    request = urllib.request.Request(daemon.url + "/rpc", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize("token_type", VOPRF_TYPES, ids=lambda t: NAMES[t])
def test_cycle_against_privacypassd(voprf_daemon: Daemon, token_type: int) -> None:
    directory = json.loads(voprf_daemon.get("/.well-known/private-token-issuer-directory"))
    keys = [k for k in directory["token-keys"] if k["token-type"] == token_type]
    assert len(keys) == 1, directory
    token_key = b64url_decode(keys[0]["token-key"])
    assert len(token_key) == SIZES[token_type]["public_key"]

    challenge = challenge_for(token_type)
    with pp.Client.voprf(token_type, token_key) as client, client.request(challenge) as pending:
        response = voprf_daemon.post("/token-request", pending.token_request,
                                     "application/private-token-request")
        assert len(response) == SIZES[token_type]["response"]
        token = pending.finalize(response)
        daemon_token = pending.finalize(response)
    assert daemon_token == token

    # In-process, with the daemon's own key file: the same key, and the token redeems once.
    key_files = [path for path in sorted(voprf_daemon.keys_dir.glob("*.pem"))
                 if KEY_FILE_LABELS[token_type] in path.read_text(encoding="ascii")]
    assert len(key_files) == 1
    with pp.Issuer.from_pem(key_files[0].read_text(encoding="ascii")) as daemon_key:
        assert daemon_key.token_type == token_type
        assert daemon_key.public_key == token_key
        assert key_files[0].stem == daemon_key.token_key_id.hex()
        with pp.Redeemer.from_issuer(daemon_key, "memory:") as redeemer:
            redeemer.redeem(token, challenge)
            with pytest.raises(pp.AlreadySpent):
                redeemer.redeem(token, challenge)

    # Through the daemon: once, then 403 with the AlreadySpent code.
    status, answer = rpc_redeem(voprf_daemon, token)
    assert (status, answer.get("result")) == (200, "success"), answer
    status, answer = rpc_redeem(voprf_daemon, token)
    assert status == 403 == pp.AlreadySpent().http_status, answer
    assert answer["error"]["code"] == pp.AlreadySpent.code


def test_privacypassd_refuses_a_request_for_another_voprf_key(voprf_daemon: Daemon) -> None:
    with pp.Issuer.generate_voprf(P384) as issuer, \
            pp.Client.voprf(P384, issuer.public_key) as client, \
            client.request(challenge_for(P384)) as pending:
        with pytest.raises(urllib.error.HTTPError) as caught:
            voprf_daemon.post("/token-request", pending.token_request,
                              "application/private-token-request")
        assert caught.value.code in (pp.UnprocessableBlindedToken().http_status,
                                     pp.UnknownIssuanceKey().http_status)
