"""privacypass_token_types: the privately verifiable token types 1 (VOPRF P-384) and 5 (VOPRF
ristretto255) beside type 2 on one location. The daemon holds a key of each type; nginx's key
file is its directory. nginx checks the type, the challenge binding and the key id; the daemon
verifies and spends."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from harness import Daemon, Minter, Nginx, decode_challenge, parse_challenges, read
from test_nginx import assert_healthy, mark, wait_log

import privacypass as pp

TOKEN_LEN = {1: 146, 2: 354, 5: 162}
KEY_LEN = {1: 49, 2: 342, 5: 32}


def challenges(nginx: Nginx, path: str) -> List[Tuple[bytes, bytes]]:
    status, headers, _ = nginx.get(path)
    assert status == 401, status
    return parse_challenges(headers["www-authenticate"])


def challenge_of(nginx: Nginx, path: str, token_type: int) -> Tuple[bytes, bytes]:
    return next((c, k) for c, k in challenges(nginx, path)
                if decode_challenge(c)["token_type"] == token_type)


def redeems(daemon: Daemon) -> int:
    return sum(daemon.redeem_calls().values())


def test_mixed_location_offers_one_challenge_per_key(nginx: Nginx, daemon: Daemon) -> None:
    status, headers, _ = nginx.get("/mixed/")
    assert status == 401
    value = headers["www-authenticate"]
    offered = parse_challenges(value)
    # privacypass_token_types 2 1 5: the keys of each type, in that order
    expected = [key for t in (2, 1, 5) for key in daemon.token_keys(t)]
    assert [(decode_challenge(c)["token_type"], k) for c, k in offered] == expected
    assert len(offered) == 3
    assert [len(k) for _, k in offered] == [KEY_LEN[2], KEY_LEN[1], KEY_LEN[5]]
    assert len(re.findall(r'max-age="?600"?', value)) == 3, value
    fields = [decode_challenge(c) for c, _ in offered]
    # the same issuer name, per-request context and origin info; the type alone differs
    assert {(f["issuer"], f["context"], f["origin"]) for f in fields} == {
        ("127.0.0.1", fields[0]["context"], "")}
    assert len(fields[0]["context"]) == 32
    # and the same context as the type 2 location of the same settings
    type2 = challenges(nginx, "/protected/")
    assert len(type2) == 1 and decode_challenge(type2[0][0])["context"] == fields[0]["context"]

    # the types in another order, names instead of numbers, a fixed context
    fixed = challenges(nginx, "/mixed-fixed/")
    assert [(decode_challenge(c)["token_type"], k) for c, k in fixed] == [
        *daemon.token_keys(5), *daemon.token_keys(1)]
    assert {decode_challenge(c)["context"] for c, _ in fixed} == {b""}


@pytest.mark.parametrize("token_type", [1, 5])
def test_voprf_token_passes_once(nginx: Nginx, daemon: Daemon, minter: Minter,
                                 token_type: int) -> None:
    challenge, key = challenge_of(nginx, "/mixed/", token_type)
    token = minter.token(challenge, key)
    assert len(token) == TOKEN_LEN[token_type]
    authorization = pp.encode_authorization(token)
    m = mark()
    before = daemon.redeem_calls()
    status, _, body = nginx.get(f"/mixed/?{m}", authorization)
    assert (status, body) == (200, b"mixed\n")
    status, headers, _ = nginx.get(f"/mixed/?{m}", authorization)
    assert status == 401
    assert len(parse_challenges(headers["www-authenticate"])) == 3
    after = daemon.redeem_calls()
    assert after["0"] - before["0"] == 1 and after["-32021"] - before["-32021"] == 1
    key_id = hashlib.sha256(key).hexdigest()
    assert key_id in daemon.key_ids(token_type)
    lines = wait_log(nginx, m, 2, with_type=True)
    assert [line[1:] for line in lines] == [(200, "valid", key_id, str(token_type)),
                                            (401, "spent", key_id, str(token_type))]


@pytest.mark.parametrize("token_type", [1, 5])
def test_voprf_token_fixed_context(nginx: Nginx, minter: Minter, token_type: int) -> None:
    challenge, key = challenge_of(nginx, "/mixed-fixed/", token_type)
    authorization = minter.authorization(challenge, key)
    assert nginx.get("/mixed-fixed/", authorization)[0] == 200
    assert nginx.get("/mixed-fixed/", authorization)[0] == 401
    # a token of the per-request location's challenge is not bound to this one
    challenge, key = challenge_of(nginx, "/mixed/", token_type)
    assert nginx.get("/mixed-fixed/", minter.authorization(challenge, key))[0] == 401


@pytest.mark.parametrize("token_type", [1, 5])
def test_tampered_voprf_token_is_refused_by_the_daemon(nginx: Nginx, daemon: Daemon,
                                                      minter: Minter, token_type: int) -> None:
    """nginx cannot verify a type 1 or 5 authenticator: the daemon does (-32020)."""
    challenge, key = challenge_of(nginx, "/mixed/", token_type)
    token = bytearray(minter.token(challenge, key))
    token[-1] ^= 1
    m = mark()
    before = daemon.redeem_calls()
    status, headers, _ = nginx.get(f"/mixed/?{m}", pp.encode_authorization(bytes(token)))
    assert status == 401
    assert "retry-after" not in headers
    after = daemon.redeem_calls()
    assert after["-32020"] - before["-32020"] == 1
    assert wait_log(nginx, m, 1)[0][1:3] == (401, "invalid")
    assert "the redeemer refused the token" in read(nginx.error_log)


@pytest.mark.parametrize("token_type", [1, 5])
def test_unbound_or_unknown_key_voprf_token_never_reaches_the_daemon(
        nginx: Nginx, daemon: Daemon, minter: Minter, token_type: int) -> None:
    challenge, key = challenge_of(nginx, "/mixed/", token_type)
    # the daemon's key, for a challenge this origin never issued
    forged = pp.encode_challenge("127.0.0.1", redemption_context=bytes(32),
                                 token_type=token_type)
    unbound = minter.token(forged, key)
    # a token for the right challenge naming a key the location does not offer
    good = minter.token(challenge, key)
    unknown = bytearray(good)
    unknown[66] ^= 1  # token_key_id: bytes 66..98
    # a token of a type 2 challenge relabelled as this type (wrong length)
    rsa_challenge, rsa_key = challenge_of(nginx, "/mixed/", 2)
    relabelled = bytes([0, token_type]) + minter.token(rsa_challenge, rsa_key)[2:]
    # this type's token, truncated and lengthened
    short, long = good[:-1], good + b"\0"
    m = mark()
    before = redeems(daemon)
    for name, token in (("unbound", unbound), ("unknown key", bytes(unknown)),
                        ("wrong length", relabelled), ("short", short), ("long", long)):
        status, headers, _ = nginx.get(f"/mixed/?{m}", "PrivateToken token=" + b64(token))
        assert status == 401, name
        assert headers["www-authenticate"].startswith("PrivateToken challenge="), name
    assert redeems(daemon) == before
    assert [line[2] for line in wait_log(nginx, m, 5)] == ["invalid"] * 5
    errors = read(nginx.error_log)
    assert "token not bound to a current challenge of this location" in errors
    assert "token of a key this location does not offer" in errors
    # none of these spent the good token
    assert nginx.get("/mixed/", pp.encode_authorization(good))[0] == 200


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize("token_type", [1, 5])
def test_voprf_token_at_a_type_2_location_is_refused(nginx: Nginx, daemon: Daemon,
                                                     minter: Minter, token_type: int) -> None:
    """The default privacypass_token_types 2: a type 1 or 5 token is refused unspent, even
    for a challenge of the same context."""
    challenge, key = challenge_of(nginx, "/mixed/", token_type)
    authorization = minter.authorization(challenge, key)
    m = mark()
    before = redeems(daemon)
    status, headers, _ = nginx.get(f"/protected/?{m}", authorization)
    assert status == 401
    assert len(parse_challenges(headers["www-authenticate"])) == 1
    assert redeems(daemon) == before
    line = wait_log(nginx, m, 1, with_type=True)[0]
    assert line[1:3] == (401, "invalid") and line[4] == str(token_type)
    assert (f"privacypass: token refused: a token of type {token_type} "
            in read(nginx.error_log))
    # not spent: it passes where its type is accepted
    assert nginx.get("/mixed/", authorization)[0] == 200


def test_type_2_still_works_on_the_mixed_location(nginx: Nginx, minter: Minter) -> None:
    challenge, key = challenge_of(nginx, "/mixed/", 2)
    authorization = minter.authorization(challenge, key)
    m = mark()
    assert nginx.get(f"/mixed/?{m}", authorization)[0] == 200
    assert nginx.get(f"/mixed/?{m}", authorization)[0] == 401
    key_id = hashlib.sha256(key).hexdigest()
    assert [line[2:] for line in wait_log(nginx, m, 2, with_type=True)] == [
        ("valid", key_id, "2"), ("spent", key_id, "2")]
    # and a type 2 token of /protected/ (the same challenge) passes here
    challenge, keys, _ = nginx.challenge("/protected/")
    assert nginx.get("/mixed/", minter.authorization(challenge, keys[0]))[0] == 200
    assert_healthy(nginx)


def test_daemon_stopped_fails_closed_for_a_voprf_token(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "privacypassd")
    try:
        nginx = Nginx(tmp_path / "nginx", daemon)
        try:
            minter = Minter(daemon)
            tokens = {t: minter.authorization(*challenge_of(nginx, "/mixed/", t)) for t in (1, 5)}
            daemon.stop()
            for t, authorization in tokens.items():
                m = mark()
                status, headers, _ = nginx.get(f"/mixed/?{m}", authorization)
                assert status == 503, t
                assert headers.get("retry-after") == "1", headers
                assert wait_log(nginx, m, 1)[0][1:3] == (503, "error")
            assert "privacypass: redemption through \"/_privacypass/redeem\" failed" in read(
                nginx.error_log)
        finally:
            nginx.stop()
    finally:
        daemon.stop()


def test_token_types_config_errors(nginx: Nginx, daemon: Daemon, tmp_path: Path) -> None:
    """nginx -t names the type and the file."""
    base = (nginx.prefix / "conf" / "nginx.conf").read_text()
    type2_only = tmp_path / "type2.json"
    directory = json.loads(daemon.directory())
    directory["token-keys"] = [k for k in directory["token-keys"] if k["token-type"] == 2]
    type2_only.write_text(json.dumps(directory))
    voprf_only = tmp_path / "voprf.json"
    directory = json.loads(daemon.directory())
    directory["token-keys"] = [k for k in directory["token-keys"] if k["token-type"] != 2]
    voprf_only.write_text(json.dumps(directory))
    pem = f"{nginx.prefix}/conf/keys.pem"
    mixed = "privacypass_token_types 2 1 5;"
    bad: Dict[str, Tuple[str, str]] = {
        "PEM with type 1": (base.replace(
            mixed, f"privacypass_token_types 1;\n            privacypass_keys {pem};"),
            rf'token type 1 \(voprf-p384\) needs an issuer directory .*"{pem}" is a PEM file'),
        "PEM with types 2 5": (base.replace(
            mixed, f"privacypass_token_types 2 5;\n            privacypass_keys {pem};"),
            r"token type 5 \(voprf-ristretto255\) needs an issuer directory"),
        "an unknown type": (base.replace(mixed, "privacypass_token_types 2 3;"),
                            r'unknown token type "3"'),
        "an unknown name": (base.replace(mixed, "privacypass_token_types voprf-p256;"),
                            r'unknown token type "voprf-p256"'),
        "a type twice": (base.replace(mixed, "privacypass_token_types 1 voprf-p384;"),
                         r"token type 1 \(voprf-p384\) is given twice"),
        "no key of type 1": (base.replace(
            mixed, f"privacypass_token_types 2 1;\n            privacypass_keys {type2_only};"),
            rf'"{type2_only}" holds no key of token type 1 \(voprf-p384\)'),
        "no key of type 2 for the default": (base.replace(
            "privacypass_keys {}/conf/directory.json;".format(nginx.prefix),
            f"privacypass_keys {voprf_only};"),
            rf'"{voprf_only}" holds no key of token type 2 \(blind-rsa-2048\)'),
    }
    for name, (text, message) in bad.items():
        assert text != base, name
        conf = tmp_path / "bad.conf"
        conf.write_text(text)
        result = subprocess.run([str(nginx.nginx), "-t", "-p", str(nginx.prefix), "-c", str(conf),
                                 "-e", str(tmp_path / "t.log")], capture_output=True, text=True)
        assert result.returncode != 0, name
        assert re.search(message, result.stderr), (name, result.stderr)

    # a directory of VOPRF keys only serves a location of those types
    good = base.replace("privacypass_keys {}/conf/directory.json;".format(nginx.prefix),
                        "privacypass_token_types 5 1;\n"
                        f"        privacypass_keys {voprf_only};")
    good = good.replace("privacypass_keys {}/conf/keys.pem;".format(nginx.prefix), "")
    good = re.sub(r"privacypass_token_types 2 1 5;", "", good)
    conf = tmp_path / "good.conf"
    conf.write_text(good)
    result = subprocess.run([str(nginx.nginx), "-t", "-p", str(nginx.prefix), "-c", str(conf),
                             "-e", str(tmp_path / "t.log")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
