"""ngx_http_privacypass_module in a real nginx (2 workers) beside a real privacypassd: challenge,
issuance by the daemon, redemption exactly once across workers, malformed credentials, failing
closed, reload."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import subprocess
import threading
import time
import uuid
from typing import List, Tuple

import httpx
import privacypass as pp
import pytest
from harness import Daemon, Minter, Nginx, b64url_decode, decode_challenge, read

LINE = re.compile(r'^(\d+) (\d{3}) (\S+) (\S+) (\S+) "(.*)"$')


def log_lines(nginx: Nginx, marker: str, with_type: bool = False) -> List[Tuple]:
    """(pid, status, $privacypass_status, $privacypass_token_key_id[,
    $privacypass_token_type]) of the requests whose request line holds marker."""
    out = []
    for line in read(nginx.access_log).splitlines():
        m = LINE.match(line)
        if m and marker in m.group(6):
            fields = (int(m.group(1)), int(m.group(2)), m.group(3), m.group(4))
            out.append(fields + (m.group(5),) if with_type else fields)
    return out


def wait_log(nginx: Nginx, marker: str, count: int, with_type: bool = False) -> List[Tuple]:
    deadline = time.monotonic() + 10
    while True:
        lines = log_lines(nginx, marker, with_type)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def mark() -> str:
    return uuid.uuid4().hex[:12]


def assert_healthy(nginx: Nginx) -> None:
    """nginx still serves, from both workers, and no worker died."""
    assert nginx.process.poll() is None, read(nginx.error_log)
    assert nginx.get("/")[0] == 200
    assert len(nginx.worker_pids()) == 2
    errors = read(nginx.error_log)
    for bad in ("exited on signal", "[alert]", "[crit]", "[emerg]"):
        assert bad not in errors, errors


def fresh(nginx: Nginx, minter: Minter, path: str = "/protected/") -> str:
    challenge, keys, _ = nginx.challenge(path)
    return minter.authorization(challenge, keys[0])


def test_request_without_token_gets_a_challenge(nginx: Nginx, daemon: Daemon) -> None:
    m = mark()
    status, headers, _ = nginx.get(f"/protected/?{m}")
    assert status == 401
    value = headers["www-authenticate"]
    assert value.startswith("PrivateToken challenge=")
    assert re.search(r'max-age="?600"?', value), value
    challenge, keys, _ = nginx.challenge()
    fields = decode_challenge(challenge)
    assert fields["token_type"] == 2
    assert fields["issuer"] == "127.0.0.1"
    assert len(fields["context"]) == 32  # per-request: an HMAC of the time window
    assert fields["origin"] == ""
    # the default privacypass_token_types 2: the directory's type 2 keys only
    directory = json.loads(daemon.directory())
    assert keys == [b64url_decode(k["token-key"]) for k in directory["token-keys"]
                    if k["token-type"] == 2]
    assert {k["token-type"] for k in directory["token-keys"]} == {1, 2, 5}
    # the unprotected location needs nothing
    assert nginx.get("/")[0] == 200
    assert wait_log(nginx, m, 1)[0][1:3] == (401, "missing")


def test_token_passes_once(nginx: Nginx, daemon: Daemon, minter: Minter) -> None:
    authorization = fresh(nginx, minter)
    m = mark()
    status, _, body = nginx.get(f"/protected/?{m}", authorization)
    assert (status, body) == (200, b"protected\n")
    status, headers, _ = nginx.get(f"/protected/?{m}", authorization)
    assert status == 401
    assert headers["www-authenticate"].startswith("PrivateToken challenge=")
    lines = wait_log(nginx, m, 2)
    key_id = daemon.key_ids()[0]
    assert [line[1:] for line in lines] == [(200, "valid", key_id), (401, "spent", key_id)]
    assert "privacypass: token refused: token already spent" in read(nginx.error_log)


@pytest.mark.parametrize("path", ["/protected/", "/url/"])
def test_one_token_32_concurrent_requests_one_success_across_workers(
        nginx: Nginx, minter: Minter, path: str) -> None:
    pids_seen = set()
    for attempt in range(5):
        authorization = fresh(nginx, minter, path)
        m = mark()
        barrier = threading.Barrier(32)
        statuses: List[int] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            barrier.wait()
            status = nginx.get(f"{path}?{m}-{i}", authorization)[0]
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200] + [401] * 31, statuses
        lines = wait_log(nginx, m, 32)
        assert len(lines) == 32
        assert sorted(line[2] for line in lines) == ["spent"] * 31 + ["valid"]
        pids_seen = {line[0] for line in lines}
        if len(pids_seen) == 2:
            break
    assert len(pids_seen) == 2, f"all requests were served by one worker: {pids_seen}"
    assert pids_seen == set(nginx.worker_pids())


def test_malformed_authorization_is_refused(nginx: Nginx, daemon: Daemon,
                                            minter: Minter, tmp_path) -> None:
    challenge, keys, _ = nginx.challenge()
    good = minter.token(challenge, keys[0])
    good_b64 = pp.encode_authorization(good).split("=", 1)[1].strip('"')

    # a token of another issuer, for this very challenge
    with pp.Issuer.generate() as other, pp.Client(other.public_key) as client, \
            client.request(challenge) as pending:
        foreign = pending.finalize(other.issue(pending.token_request))
    # a token of the daemon's key, for a challenge this origin never issued
    forged_challenge = pp.encode_challenge("127.0.0.1", redemption_context=os.urandom(32))
    unbound = minter.token(forged_challenge, keys[0])
    other_issuer = minter.token(pp.encode_challenge("other.example"), keys[0])
    tampered = bytearray(good)
    tampered[-1] ^= 1

    cases = {
        "huge": "PrivateToken token=" + "A" * 6000,
        "huge garbage": "PrivateToken " + "x" * 7000,
        "bad base64": "PrivateToken token=!!!not*base64$$",
        "empty token": "PrivateToken token=",
        "no token parameter": "PrivateToken challenge=" + good_b64,
        "wrong scheme basic": "Basic dXNlcjpwYXNz",
        "wrong scheme bearer": "Bearer " + good_b64,
        "scheme only": "PrivateToken",
        "empty": "",
        "two tokens in one credential": f'PrivateToken token="{good_b64}", token="{good_b64}"',
        "two credentials": f'PrivateToken token="{good_b64}", PrivateToken token="{good_b64}"',
        "truncated token": "PrivateToken token=" + good_b64[:100],
        "token too long": pp.encode_authorization(good)[:-1] + "AAAA\"",
        "token type 1": "PrivateToken token=" + b64url(b"\x00\x01" + good[2:]),
        "another issuer's key": pp.encode_authorization(foreign),
        "a challenge of another issuer name": pp.encode_authorization(other_issuer),
        "a challenge not from this origin": pp.encode_authorization(unbound),
        "tampered authenticator": pp.encode_authorization(bytes(tampered)),
        "control bytes": "PrivateToken token=\x01\x02\x7f",
        "utf-8": "PrivateToken token=\u00e9\u00e9",
    }
    m = mark()
    for name, value in cases.items():
        status, headers, _ = nginx.get(f"/protected/?{m}", value)
        assert status == 401, (name, status)
        assert headers["www-authenticate"].startswith("PrivateToken challenge="), name
    lines = wait_log(nginx, m, len(cases))
    assert len(lines) == len(cases)
    assert {line[2] for line in lines} <= {"invalid", "missing"}, lines

    # two Authorization header lines: nginx itself refuses them (400) before any module runs
    status, _, _ = nginx.get("/protected/", headers=[("Authorization", f"PrivateToken token={good_b64}"),
                                                     ("Authorization", f"PrivateToken token={good_b64}")])
    assert status == 400, status
    # beyond large_client_header_buffers (8k): nginx answers 400 itself
    status, _, _ = nginx.get("/protected/", "PrivateToken token=" + "A" * 20000)
    assert status == 400, status

    assert_healthy(nginx)
    # none of these spent the good token
    assert nginx.get("/protected/", f"PrivateToken token={good_b64}")[0] == 200


def test_http2_streams_of_one_connection_spend_a_token_once(nginx: Nginx, minter: Minter) -> None:
    """HTTP/2 (prior knowledge): the challenge, then 16 streams multiplexed on one connection
    presenting one token: exactly one 200, the others 401 with a fresh challenge; then a fresh
    token passes and its replay is refused."""
    async def run() -> None:
        base = f"http://127.0.0.1:{nginx.h2_port}"
        async with httpx.AsyncClient(http1=False, http2=True, base_url=base) as client:
            first = await client.get("/protected/")
            assert first.http_version == "HTTP/2"
            assert first.status_code == 401
            assert first.headers["www-authenticate"].startswith("PrivateToken challenge=")

            authorization = fresh(nginx, minter)
            answers = await asyncio.gather(*(
                client.get(f"/protected/?h2-{i}", headers={"authorization": authorization})
                for i in range(16)))
            assert {a.http_version for a in answers} == {"HTTP/2"}
            statuses = sorted(a.status_code for a in answers)
            assert statuses == [200] + [401] * 15, statuses
            assert all("www-authenticate" in a.headers for a in answers if a.status_code == 401)

            authorization = fresh(nginx, minter)
            ok = await client.get("/protected/", headers={"authorization": authorization})
            assert (ok.status_code, ok.text) == (200, "protected\n")
            again = await client.get("/protected/", headers={"authorization": authorization})
            assert again.status_code == 401

    asyncio.run(run())
    assert_healthy(nginx)


def test_daemon_unreachable_fails_closed(nginx: Nginx, minter: Minter) -> None:
    authorization = fresh(nginx, minter, "/down/")
    m = mark()
    status, headers, _ = nginx.get(f"/down/?{m}", authorization)
    assert status == 503
    assert headers.get("retry-after") == "1", headers
    assert wait_log(nginx, m, 1)[0][1:3] == (503, "error")
    assert "privacypass: redemption through \"/_privacypass/nowhere\" failed" in read(nginx.error_log)
    # nothing was recorded: the same token is good where the daemon answers
    assert nginx.get("/protected/", authorization)[0] == 200


@pytest.mark.parametrize("path, code", [("/malformed/", -32602), ("/unsupported/", -32022)])
def test_a_token_the_redeemer_refuses_is_challenged_again(nginx: Nginx, minter: Minter,
                                                        path: str, code: int) -> None:
    """A redeemer answering that the token is malformed (-32602, HTTP 400) or of a type it does
    not serve (-32022, HTTP 400) refused the token: the client gets a 401 with a fresh
    challenge, not a 503 that would invite it to present the same token again."""
    authorization = fresh(nginx, minter, path)
    m = mark()
    status, headers, _ = nginx.get(f"{path}?{m}", authorization)
    assert status == 401, (code, status)
    assert headers["www-authenticate"].startswith("PrivateToken challenge="), headers
    assert "retry-after" not in headers
    assert wait_log(nginx, m, 1)[0][1:3] == (401, "invalid")
    assert "the redeemer refused the token" in read(nginx.error_log)
    assert_healthy(nginx)


def test_redeem_url_shorthand(nginx: Nginx, daemon: Daemon, minter: Minter) -> None:
    """privacypass_redeem_url http://HOST:PORT/api/redeem: the module's own internal location,
    shared by the locations of one server that name the same URL."""
    authorization = fresh(nginx, minter, "/url/")
    assert nginx.get("/url/", authorization)[0] == 200
    assert nginx.get("/url2/", authorization)[0] == 401  # the same daemon: spent
    assert nginx.get("/url/", authorization)[0] == 401
    authorization = fresh(nginx, minter, "/url2/")
    assert nginx.get("/url2/", authorization)[0] == 200
    # the generated location is internal: a client cannot reach it
    conf = (nginx.prefix / "conf" / "nginx.conf").read_text()
    assert "/_privacypass/redeem-" not in conf
    url = f"http://127.0.0.1:{daemon.port}/api/redeem".encode()
    generated = "/_privacypass/redeem-" + hashlib.sha256(url).hexdigest()[:16]
    assert nginx.get(generated)[0] == 404


def test_redemption_context_none(nginx: Nginx, minter: Minter) -> None:
    challenge, keys, _ = nginx.challenge("/fixed/")
    fields = decode_challenge(challenge)
    assert fields["context"] == b"" and fields["origin"] == "127.0.0.1"
    assert nginx.challenge("/fixed/")[0] == challenge
    authorization = minter.authorization(challenge, keys[0])
    assert nginx.get("/fixed/", authorization)[0] == 200
    assert nginx.get("/fixed/", authorization)[0] == 401
    # a token of the per-request location is not bound to this challenge
    assert nginx.get("/fixed/", fresh(nginx, minter))[0] == 401


def test_pem_keys_and_rsa_encryption_spki(nginx: Nginx, minter: Minter) -> None:
    challenge, keys, _ = nginx.challenge("/pem/")
    # the rsaEncryption PEM is offered as the RFC 9578 RSASSA-PSS key of the directory
    assert keys == nginx.challenge("/protected/")[1]
    authorization = minter.authorization(challenge, keys[0])
    assert nginx.get("/pem/", authorization)[0] == 200
    assert nginx.get("/pem/", authorization)[0] == 401


def test_challenge_stable_within_a_window(nginx: Nginx) -> None:
    first = nginx.challenge()[0]
    assert nginx.challenge()[0] == first or int(time.time()) % 600 < 2


def sleep_into_window(length: int, offset: float = 0.3) -> None:
    """Sleeps until `offset` seconds into the next window of `length` seconds."""
    now = time.time()
    time.sleep(length - now % length + offset)


def test_per_request_contexts_follow_the_time_window(nginx: Nginx, minter: Minter) -> None:
    """privacypass_max_age 2s: the challenge changes every 2 s; a token answers the challenge
    of the current or the previous window, not an older one."""
    sleep_into_window(2)
    first, keys, header = nginx.challenge("/short/")
    assert re.search(r'max-age="?2"?', header), header
    now_token, next_token, late_token = (minter.authorization(first, keys[0]) for _ in range(3))
    assert nginx.get("/short/", now_token)[0] == 200
    sleep_into_window(2)
    second = nginx.challenge("/short/")[0]
    assert second != first
    assert decode_challenge(second)["context"] != decode_challenge(first)["context"]
    assert nginx.get("/short/", next_token)[0] == 200  # the previous window's challenge
    sleep_into_window(2)
    assert nginx.challenge("/short/")[0] not in (first, second)
    m = mark()
    assert nginx.get(f"/short/?{m}", late_token)[0] == 401  # two windows old
    assert wait_log(nginx, m, 1)[0][2] == "invalid"


def test_reload_keeps_serving(nginx: Nginx, minter: Minter) -> None:
    # minted before the reload; privacypass_context_secret keeps its challenge valid after it
    before = fresh(nginx, minter)
    old_workers = tuple(nginx.worker_pids())
    result = nginx.reload()
    assert result.returncode == 0, result.stderr
    nginx.wait_for_workers(2, exclude=old_workers)
    deadline = time.monotonic() + 20
    while set(nginx.worker_pids()) & set(old_workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert nginx.get("/protected/", "PrivateToken token=%%%")[0] == 401
    assert nginx.get("/protected/")[0] == 401
    assert nginx.get("/protected/", fresh(nginx, minter))[0] == 200
    assert nginx.get("/protected/", before)[0] == 200
    assert nginx.get("/protected/", before)[0] == 401
    assert_healthy(nginx)
    assert "reconfiguring" in read(nginx.error_log)


def test_config_errors_are_reported(nginx: Nginx, tmp_path) -> None:
    """nginx -t refuses a configuration that could not spend tokens, or has no keys."""
    base = (nginx.prefix / "conf" / "nginx.conf").read_text()
    bad = {
        "without privacypass_redeem_url": base.replace(
            "privacypass_redeem_url /_privacypass/redeem;", ""),
        "a URL at the http level": base.replace(
            "http {", "http {\n    privacypass_redeem_url http://127.0.0.1:1/api/redeem;", 1),
        "neither a URI nor an http URL": base.replace(
            "privacypass_redeem_url /_privacypass/redeem;",
            "privacypass_redeem_url ftp://127.0.0.1/api/redeem;"),
        "keys that are not keys": base.replace("conf/directory.json", "conf/nginx.conf"),
    }
    for name, text in bad.items():
        conf = tmp_path / "bad.conf"
        conf.write_text(text)
        result = subprocess.run([str(nginx.nginx), "-t", "-p", str(nginx.prefix), "-c", str(conf),
                                 "-e", str(tmp_path / "t.log")], capture_output=True, text=True)
        assert result.returncode != 0, name
        assert "privacypass" in result.stderr, (name, result.stderr)
        # no key material in messages
        assert "MIIB" not in result.stderr
