"""Batched issuance (draft-ietf-privacypass-batched-tokens): amortized batches of types 1 and 5
(Client.request_amortized, PendingBatch, Issuer.issue_amortized) and generic batches of any
types (PendingGenericBatch, issue_generic). Every vector of tests/vectors'
batched-amortized_p384_rs.json, batched-amortized_ristretto255_rs.json and batched-generic_rs.json
end to end, fresh-key cycles, a partial generic answer, the error paths, handles and threads."""

from __future__ import annotations

import gc
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

import pytest

import privacypass as pp
from conftest import VECTORS_DIR

P384, R255, RSA = pp.TOKEN_TYPE_VOPRF_P384, pp.TOKEN_TYPE_VOPRF_RISTRETTO255, pp.TOKEN_TYPE_BLIND_RSA
NAMES = {P384: "p384", R255: "ristretto255"}
TOKEN_LENS = {P384: pp.VOPRF_P384_TOKEN_LEN, R255: pp.VOPRF_RISTRETTO255_TOKEN_LEN,
              RSA: pp.TOKEN_LEN}
AMORTIZED_FILES: List[Tuple[str, int]] = [
    ("batched-amortized_p384_rs.json", P384),
    ("batched-amortized_ristretto255_rs.json", R255),
]
GENERIC_FILE = "batched-generic_rs.json"


def _decode(value: Any) -> Any:
    """A vector's value: hex strings as bytes, lists and objects element by element, null as
    None."""
    if value is None:
        return None
    if isinstance(value, str):
        return bytes.fromhex(value)
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return {key: _decode(item) for key, item in value.items()}


def load(name: str) -> List[Dict[str, Any]]:
    with open(VECTORS_DIR / name, encoding="utf-8") as f:
        vectors: List[Dict[str, Any]] = _decode(json.load(f))
    return vectors


AMORTIZED_CASES = [(name, token_type, index) for name, token_type in AMORTIZED_FILES
                   for index in range(len(load(name)))]
GENERIC_CASES = list(range(len(load(GENERIC_FILE))))


def challenge_for(token_type: int) -> bytes:
    return pp.encode_challenge("issuer.example", token_type=token_type)


@pytest.fixture(scope="module", params=[P384, R255], ids=lambda t: NAMES[t])
def voprf_issuer(request: pytest.FixtureRequest) -> Any:
    with pp.Issuer.generate_voprf(request.param) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def rsa_issuer() -> Any:
    with pp.Issuer.from_pem(load(GENERIC_FILE)[0]["issuance"][1]["sk_s"]) as issuer:
        assert issuer.token_type == RSA
        yield issuer


# ---------------------------------------------------------------------------------------------
# Known-answer vectors


def test_vector_files() -> None:
    for name, token_type in AMORTIZED_FILES:
        vectors = load(name)
        assert len(vectors) == 5
        for v in vectors:
            assert len(v["nonces"]) == len(v["blinds"]) == len(v["tokens"]) >= 1
            assert int.from_bytes(v["token_request"][:2], "big") == token_type
    generic = load(GENERIC_FILE)
    assert len(generic) == 3
    types = {int.from_bytes(e["token_type"], "big") for v in generic for e in v["issuance"]}
    assert types == {P384, RSA, R255}


@pytest.mark.parametrize("name,token_type,index", AMORTIZED_CASES,
                         ids=[f"{n.rsplit('.', 1)[0]}-{i}" for n, _, i in AMORTIZED_CASES])
def test_amortized_vector(name: str, token_type: int, index: int) -> None:
    v = load(name)[index]
    n = len(v["tokens"])
    challenge = v["token_challenge"]
    with pp.Issuer.from_scalar(token_type, v["sk_s"]) as issuer, \
            pp.Client.voprf(token_type, v["pk_s"]) as client:
        assert issuer.public_key == v["pk_s"]
        with client.request_amortized_with_randomness(challenge, nonces=v["nonces"],
                                                      blinds=v["blinds"]) as batch:
            assert len(batch) == n
            assert batch.token_request == v["token_request"]
            # The vector's response finalizes into the vector's tokens, again and again.
            assert batch.finalize(v["token_response"]) == v["tokens"]
            assert batch.finalize(bytearray(v["token_response"])) == v["tokens"]
            assert all(len(token) == TOKEN_LENS[token_type] for token in v["tokens"])
            # Our issuer: a fresh proof over the same evaluations, the same tokens.
            response = issuer.issue_amortized(v["token_request"])
            assert len(response) == len(v["token_response"])
            assert batch.finalize(response) == v["tokens"]
            assert batch.finalize(issuer.issue_amortized(v["token_request"], max_tokens=n)) \
                == v["tokens"]
            with pytest.raises(pp.TooLarge) as err:
                issuer.issue_amortized(v["token_request"], max_tokens=n - 1)
            assert err.value.http_status == 413
        # Each token redeems once, with the issuer's key, bound to the challenge.
        with pp.Redeemer.from_issuer(issuer, "memory:") as redeemer:
            for token in v["tokens"]:
                redeemer.redeem(token, challenge)
                with pytest.raises(pp.AlreadySpent):
                    redeemer.redeem(token)


def _generic_parts(v: Dict[str, Any]) -> Tuple[List[pp.Issuer], List[int], List[pp.PendingToken],
                                                List[bytes]]:
    """The vector's issuers (one per distinct key, in order of first use), each entry's issuer
    index, each entry's pending token (from the vector's randomness) and each entry's token."""
    issuers: List[pp.Issuer] = []
    keys: List[Tuple[int, bytes]] = []
    owners: List[int] = []
    pending: List[pp.PendingToken] = []
    for e in v["issuance"]:
        token_type = int.from_bytes(e["token_type"], "big")
        key = (token_type, e["pk_s"])
        if key not in keys:
            keys.append(key)
            issuer = (pp.Issuer.from_pem(e["sk_s"]) if token_type == RSA
                      else pp.Issuer.from_scalar(token_type, e["sk_s"]))
            assert issuer.public_key == e["pk_s"]
            issuers.append(issuer)
        owners.append(keys.index(key))
        if token_type == RSA:
            with pp.Client(e["pk_s"]) as client:
                pending.append(client.request_with_randomness(
                    e["token_challenge"], nonce=e["nonce"], salt=e["salt"], blind=e["blind"]))
        else:
            assert e["salt"] is None
            with pp.Client.voprf(token_type, e["pk_s"]) as client:
                pending.append(client.request_with_randomness(
                    e["token_challenge"], nonce=e["nonce"], blind=e["blind"]))
        assert len(e["token"]) == TOKEN_LENS[token_type]
    return issuers, owners, pending, [e["token"] for e in v["issuance"]]


@pytest.mark.parametrize("index", GENERIC_CASES, ids=[f"generic-{i}" for i in GENERIC_CASES])
def test_generic_vector(index: int) -> None:
    v = load(GENERIC_FILE)[index]
    issuers, owners, pending, tokens = _generic_parts(v)
    try:
        batch = pp.PendingGenericBatch(pending)
        # The batch holds its own references: the pending tokens may be closed.
        for p in pending:
            p.close()
        with batch:
            assert len(batch) == len(tokens)
            assert batch.token_request == v["token_request"]
            assert batch.finalize(v["token_response"]) == tokens
            assert batch.finalize(bytearray(v["token_response"])) == tokens
            # Our issuers together, on the machine's threads, one, and two.
            for threads in (0, 1, 2):
                response = pp.issue_generic(issuers, v["token_request"], threads=threads)
                assert len(response) == len(v["token_response"])
                assert batch.finalize(response) == tokens
            with pytest.raises(pp.TooLarge):
                pp.issue_generic(issuers, v["token_request"], max_tokens=len(tokens) - 1)
            # The first issuer alone: the others' entries are refused (None), the rest issued.
            partial = batch.finalize(pp.issue_generic(issuers[:1], v["token_request"]))
            assert partial == [token if owner == 0 else None
                               for token, owner in zip(tokens, owners)]
            assert None in partial
        # Every token once, by its issuer's redeemer.
        redeemers = [pp.Redeemer.from_issuer(issuer, "memory:") for issuer in issuers]
        for e, token, owner in zip(v["issuance"], tokens, owners):
            redeemers[owner].redeem(token, e["token_challenge"])
            with pytest.raises(pp.AlreadySpent):
                redeemers[owner].redeem(token, e["token_challenge"])
        for redeemer in redeemers:
            redeemer.close()
    finally:
        for issuer in issuers:
            issuer.close()


# ---------------------------------------------------------------------------------------------
# Fresh keys


def test_amortized_cycle(voprf_issuer: pp.Issuer) -> None:
    token_type = voprf_issuer.token_type
    challenge = challenge_for(token_type)
    with pp.Client.voprf(token_type, voprf_issuer.public_key) as client, \
            client.request_amortized(challenge, 7) as batch, \
            pp.Redeemer.from_issuer(voprf_issuer, "memory:") as redeemer:
        request = batch.token_request
        assert request[:2] == token_type.to_bytes(2, "big")
        tokens = batch.finalize(voprf_issuer.issue_amortized(request))
        assert len(tokens) == len(batch) == 7 and len(set(tokens)) == 7
        assert all(len(token) == TOKEN_LENS[token_type] for token in tokens)
        for token in tokens:
            redeemer.redeem(token, challenge)
            with pytest.raises(pp.AlreadySpent):
                redeemer.redeem(token, challenge)
        # Each batch draws its own randomness; another batch's response does not finalize it.
        with client.request_amortized(challenge, 7) as other:
            assert other.token_request != request
            with pytest.raises(pp.VerificationFailed):
                other.finalize(voprf_issuer.issue_amortized(request))
        # One and the largest batch.
        with client.request_amortized(challenge, 1) as one:
            assert len(one.finalize(voprf_issuer.issue_amortized(one.token_request))) == 1
        with client.request_amortized(challenge, pp.MAX_AMORTIZED_BATCH) as big:
            response = voprf_issuer.issue_amortized(big.token_request,
                                                    max_tokens=pp.MAX_AMORTIZED_BATCH)
            assert len(big.finalize(response)) == pp.MAX_AMORTIZED_BATCH


def test_generic_cycle(rsa_issuer: pp.Issuer) -> None:
    with pp.Issuer.generate_voprf(P384) as p384, pp.Issuer.generate_voprf(R255) as r255:
        issuers = [rsa_issuer, p384, r255]
        entries = [rsa_issuer, p384, r255, r255, rsa_issuer]
        challenges = [challenge_for(issuer.token_type) for issuer in entries]
        pending = []
        for issuer, challenge in zip(entries, challenges):
            client = (pp.Client(issuer.public_key) if issuer.token_type == RSA
                      else pp.Client.voprf(issuer.token_type, issuer.public_key))
            with client:
                pending.append(client.request(challenge))
        with pp.PendingGenericBatch(pending) as batch:
            assert batch.token_request[-len(pending[-1].token_request):] == \
                pending[-1].token_request
            tokens = batch.finalize(pp.issue_generic(issuers, batch.token_request))
            # Each entry's token is what its own pending token finalizes alone.
            assert [t is not None and len(t) for t in tokens] == \
                [TOKEN_LENS[issuer.token_type] for issuer in entries]
            redeemers = {id(i): pp.Redeemer.from_issuer(i, "memory:") for i in issuers}
            for issuer, token, challenge in zip(entries, tokens, challenges):
                assert token is not None
                redeemers[id(issuer)].redeem(token, challenge)
                with pytest.raises(pp.AlreadySpent):
                    redeemers[id(issuer)].redeem(token, challenge)
            for redeemer in redeemers.values():
                redeemer.close()
            # The issuers in another order, one given twice: the same answer.
            again = batch.finalize(pp.issue_generic([r255, p384, rsa_issuer, p384],
                                                    batch.token_request, threads=1))
            assert again == tokens
        for p in pending:
            p.close()


def test_partial_generic_batch(rsa_issuer: pp.Issuer) -> None:
    """An entry no issuer serves (another VOPRF key) is None; the others are tokens."""
    with pp.Issuer.generate_voprf(R255) as served, pp.Issuer.generate_voprf(R255) as unknown:
        challenge = challenge_for(R255)
        with pp.Client.voprf(R255, served.public_key) as a, \
                pp.Client.voprf(R255, unknown.public_key) as b, \
                pp.Client(rsa_issuer.public_key) as c:
            pending = [a.request(challenge), b.request(challenge), c.request(pp.encode_challenge(
                "issuer.example"))]
        with pp.PendingGenericBatch(pending) as batch:
            tokens = batch.finalize(pp.issue_generic([served, rsa_issuer], batch.token_request))
            assert tokens[1] is None and tokens[0] is not None and tokens[2] is not None
            with pp.Redeemer.from_issuer(served, "memory:") as redeemer:
                redeemer.redeem(tokens[0], challenge)
            # No issuer serves any: every entry refused, still no error.
            with pp.Issuer.generate_voprf(P384) as stranger:
                assert batch.finalize(pp.issue_generic([stranger], batch.token_request)) == \
                    [None, None, None]
        for p in pending:
            p.close()


# ---------------------------------------------------------------------------------------------
# Error paths and handles


def test_amortized_errors(voprf_issuer: pp.Issuer, rsa_issuer: pp.Issuer) -> None:
    token_type = voprf_issuer.token_type
    challenge = challenge_for(token_type)
    scalar = pp.VOPRF_P384_SCALAR_LEN if token_type == P384 else pp.VOPRF_RISTRETTO255_SCALAR_LEN
    with pp.Client.voprf(token_type, voprf_issuer.public_key) as client:
        for count in (0, pp.MAX_AMORTIZED_BATCH + 1):
            with pytest.raises(pp.InvalidInput):
                client.request_amortized(challenge, count)
        with pytest.raises(ValueError):
            client.request_amortized(challenge, -1)
        with pytest.raises(TypeError):
            client.request_amortized(challenge, 2.0)  # type: ignore[arg-type]
        with pytest.raises(pp.UnsupportedToken):
            client.request_amortized(challenge_for(RSA), 2)
        with pytest.raises(pp.InvalidInput):
            client.request_amortized(b"\x00", 2)
        # Known-answer randomness: lists of equal length, each of the right size.
        with pytest.raises(ValueError):
            client.request_amortized_with_randomness(challenge, nonces=[b"\1" * 32] * 2,
                                                     blinds=[b"\1" * scalar])
        with pytest.raises(pp.InvalidInput):
            client.request_amortized_with_randomness(challenge, nonces=[b"\1" * 31],
                                                     blinds=[b"\1" * scalar])
        with pytest.raises(pp.InvalidInput):
            client.request_amortized_with_randomness(challenge, nonces=[], blinds=[])
        with pytest.raises(pp.InvalidInput):  # zero is not a usable blind
            client.request_amortized_with_randomness(challenge, nonces=[b"\1" * 32],
                                                     blinds=[b"\0" * scalar])
        with pytest.raises(TypeError):
            client.request_amortized_with_randomness(challenge, nonces=b"\1" * 32,
                                                     blinds=[b"\1" * scalar])

        with client.request_amortized(challenge, 3) as batch:
            request = batch.token_request
            response = voprf_issuer.issue_amortized(request)
            # Too many tokens: refused before any evaluation, as TooLarge (HTTP 413).
            with pytest.raises(pp.TooLarge) as err:
                voprf_issuer.issue_amortized(request, max_tokens=2)
            assert err.value.code == -32042 and err.value.http_status == 413
            # Malformed requests; an RSA key serves no amortized batch; another key.
            for bad in (b"", request[:-1], request + b"\0", b"\0\1\2"):
                with pytest.raises(pp.UnprocessableBlindedToken):
                    voprf_issuer.issue_amortized(bad)
            with pytest.raises(pp.UnprocessableBlindedToken):
                rsa_issuer.issue_amortized(request)
            with pp.Issuer.generate_voprf(token_type) as other:
                with pytest.raises(pp.UnprocessableBlindedToken):
                    other.issue_amortized(request)
            # Malformed responses, and a tampered one.
            for bad in (b"", response[:-1], response + b"\0"):
                with pytest.raises((pp.InvalidInput, pp.VerificationFailed)):
                    batch.finalize(bad)
            tampered = bytearray(response)
            tampered[-1] ^= 1
            with pytest.raises((pp.InvalidInput, pp.VerificationFailed)):
                batch.finalize(bytes(tampered))
            with pytest.raises(TypeError):
                batch.finalize("text")  # type: ignore[arg-type]
        # Closed handles.
        assert batch.closed
        with pytest.raises(pp.ClosedHandleError):
            batch.token_request
        with pytest.raises(pp.ClosedHandleError):
            batch.finalize(response)
    with pytest.raises(pp.ClosedHandleError):
        client.request_amortized(challenge, 1)
    with pp.Client(rsa_issuer.public_key) as rsa_client:
        with pytest.raises(pp.UnsupportedToken):
            rsa_client.request_amortized(challenge_for(RSA), 2)
    with pytest.raises(TypeError):
        pp.PendingBatch()


def test_generic_errors(rsa_issuer: pp.Issuer, voprf_issuer: pp.Issuer) -> None:
    challenge = challenge_for(voprf_issuer.token_type)
    with pp.Client.voprf(voprf_issuer.token_type, voprf_issuer.public_key) as client:
        pending = [client.request(challenge) for _ in range(3)]
    with pytest.raises(pp.InvalidInput):
        pp.PendingGenericBatch([])
    with pytest.raises(TypeError):
        pp.PendingGenericBatch(pending[0])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pp.PendingGenericBatch([pending[0], b"x"])  # type: ignore[list-item]
    batch = pp.PendingGenericBatch(pending)
    request = batch.token_request
    with pytest.raises(pp.TooLarge) as err:
        pp.issue_generic([voprf_issuer], request, max_tokens=2)
    assert err.value.http_status == 413
    for bad in (b"", request[:-1], request + b"\0", b"\xff\xff"):
        with pytest.raises(pp.UnprocessableBlindedToken):
            pp.issue_generic([voprf_issuer], bad)
    with pytest.raises(pp.InvalidInput):
        pp.issue_generic([], request)
    with pytest.raises(TypeError):
        pp.issue_generic(voprf_issuer, request)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pp.issue_generic([voprf_issuer, "issuer"], request)  # type: ignore[list-item]
    with pytest.raises(ValueError):
        pp.issue_generic([voprf_issuer], request, threads=-1)
    response = pp.issue_generic([voprf_issuer, rsa_issuer], request)
    for bad in (b"", response[:-1], response + b"\0"):
        with pytest.raises((pp.InvalidInput, pp.VerificationFailed)):
            batch.finalize(bad)
    # A response to another batch: entries of another count.
    with pp.PendingGenericBatch(pending[:2]) as smaller:
        with pytest.raises(pp.InvalidInput):
            smaller.finalize(response)
    assert all(token is not None for token in batch.finalize(response))
    # Closed handles: a closed pending token cannot join a batch; a closed issuer cannot
    # serve; a closed batch does nothing.
    closed = pending[0]
    closed.close()
    with pytest.raises(pp.ClosedHandleError):
        pp.PendingGenericBatch([pending[1], closed])
    with pp.Issuer.generate_voprf(voprf_issuer.token_type) as gone:
        pass
    with pytest.raises(pp.ClosedHandleError):
        pp.issue_generic([voprf_issuer, gone], request)
    batch.close()
    batch.close()
    for call in (lambda: batch.token_request, lambda: batch.finalize(response)):
        with pytest.raises(pp.ClosedHandleError):
            call()
    for p in pending:
        p.close()


def test_handles_outlive_their_sources(voprf_issuer: pp.Issuer) -> None:
    """A batch needs neither its client nor its pending tokens alive (the C batch holds its own
    references); a garbage-collected batch is freed."""
    token_type = voprf_issuer.token_type
    challenge = challenge_for(token_type)
    client = pp.Client.voprf(token_type, voprf_issuer.public_key)
    batch = client.request_amortized(challenge, 4)
    pending = [client.request(challenge) for _ in range(2)]
    client.close()
    generic = pp.PendingGenericBatch(pending)
    del pending
    gc.collect()
    assert len(batch.finalize(voprf_issuer.issue_amortized(batch.token_request))) == 4
    assert None not in generic.finalize(pp.issue_generic([voprf_issuer], generic.token_request))
    assert "open" in repr(batch) and "PendingGenericBatch" in repr(generic)
    del batch, generic
    gc.collect()


# ---------------------------------------------------------------------------------------------
# Threads


def test_threads(voprf_issuer: pp.Issuer, rsa_issuer: pp.Issuer) -> None:
    """One batch, one issuer and one client shared by many threads: every answer right."""
    token_type = voprf_issuer.token_type
    challenge = challenge_for(token_type)
    with pp.Client.voprf(token_type, voprf_issuer.public_key) as client, \
            pp.Client(rsa_issuer.public_key) as rsa_client:
        with client.request_amortized(challenge, 16) as batch:
            request = batch.token_request
            expected = batch.finalize(voprf_issuer.issue_amortized(request))

            def amortized(_: int) -> List[bytes]:
                return batch.finalize(voprf_issuer.issue_amortized(request))

            with ThreadPoolExecutor(8) as executor:
                assert all(r == expected for r in executor.map(amortized, range(32)))

        pending = [client.request(challenge) for _ in range(4)] + \
            [rsa_client.request(pp.encode_challenge("issuer.example")) for _ in range(2)]
        with pp.PendingGenericBatch(pending) as generic:
            generic_request = generic.token_request
            tokens = generic.finalize(pp.issue_generic([voprf_issuer, rsa_issuer],
                                                       generic_request))

            def one(threads: int) -> List[Optional[bytes]]:
                return generic.finalize(pp.issue_generic([voprf_issuer, rsa_issuer],
                                                         generic_request, threads=threads))

            with ThreadPoolExecutor(8) as executor:
                assert all(r == tokens for r in executor.map(one, [0, 1, 2, 4] * 6))

            # Batches made concurrently, each with its own randomness.
            def make(_: int) -> bytes:
                with client.request_amortized(challenge, 3) as b:
                    return b.token_request

            with ThreadPoolExecutor(8) as executor:
                requests = list(executor.map(make, range(16)))
            assert len(set(requests)) == 16
        for p in pending:
            p.close()


def test_exports() -> None:
    for name in ("PendingBatch", "PendingGenericBatch", "issue_generic", "MAX_AMORTIZED_BATCH",
                 "DEFAULT_MAX_BATCH_TOKENS"):
        assert name in pp.__all__ and hasattr(pp, name)
    assert pp.MAX_AMORTIZED_BATCH == 1024 and pp.DEFAULT_MAX_BATCH_TOKENS == 100
