"""A whole cycle against a running privacypassd: issue over HTTP (RFC 9578 POST /token-request),
finalize in Python, redeem in-process and through the daemon's JSON-RPC (once only)."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request

import privacypass as pp
from conftest import Daemon


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rpc(daemon: Daemon, method: str, params: dict) -> "tuple[int, dict]":
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(daemon.url + "/rpc", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_cycle_against_privacypassd(daemon: Daemon) -> None:
    directory_text = daemon.get("/.well-known/private-token-issuer-directory")
    directory = json.loads(directory_text)
    token_key = b64url_decode(directory["token-keys"][0]["token-key"])
    assert directory["token-keys"][0]["token-type"] == pp.TOKEN_TYPE_BLIND_RSA
    assert len(token_key) == pp.PUBLIC_KEY_LEN

    challenge = pp.encode_challenge("issuer.example")
    with pp.Client(token_key) as client, client.request(challenge) as pending:
        response = daemon.post("/token-request", pending.token_request,
                               "application/private-token-request")
        assert len(response) == pp.TOKEN_RESPONSE_LEN
        token = pending.finalize(response)

    # In-process: the daemon's key, from its SPKI and from its directory.
    with pp.Verifier.from_directory(directory_text) as from_directory:
        from_directory.verify(token, challenge)
    with pp.Verifier.from_spki(token_key) as verifier, \
            pp.Redeemer(verifier, "memory:") as redeemer:
        redeemer.redeem_authorization(pp.encode_authorization(token), challenge)
        try:
            redeemer.redeem(token, challenge)
            raise AssertionError("a second in-process redeem was accepted")
        except pp.AlreadySpent:
            pass

    # Through the daemon: once, then 403 with the AlreadySpent code.
    token_b64 = base64.urlsafe_b64encode(token).decode().rstrip("=")
    status, answer = rpc(daemon, "redeem", {"token": token_b64})
    assert (status, answer.get("result")) == (200, "success"), answer
    status, answer = rpc(daemon, "redeem", {"token": token_b64})
    assert status == 403 == pp.AlreadySpent().http_status, answer
    assert answer["error"]["code"] == pp.AlreadySpent.code == -32021


def test_daemon_refuses_a_request_for_another_key(daemon: Daemon, issuer: pp.Issuer,
                                                  challenge: bytes) -> None:
    # A TokenRequest for the vectors' key is not the daemon's: 422, the code of
    # UnprocessableBlindedToken (or 404 for an unknown key), as the library maps them.
    # RFC 9578 names the key by its truncated id (the last byte of its id) alone: where the
    # vectors' key shares the daemon key's (1 in 256), the request is given another.
    directory = json.loads(daemon.get("/.well-known/private-token-issuer-directory"))
    theirs = {hashlib.sha256(b64url_decode(k["token-key"])).digest()[-1]
              for k in directory["token-keys"]}
    with pp.Client(issuer.public_key) as client, client.request(challenge) as pending:
        request = bytearray(pending.token_request)
        while request[2] in theirs:
            request[2] = (request[2] + 1) % 256
        try:
            daemon.post("/token-request", bytes(request), "application/private-token-request")
            raise AssertionError("the daemon signed a request for another key")
        except urllib.error.HTTPError as err:
            assert err.code in (pp.UnprocessableBlindedToken().http_status,
                                pp.UnknownIssuanceKey().http_status)
