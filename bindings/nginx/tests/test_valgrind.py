"""The module under valgrind: nginx in one process (no master), every path of the module taken
(challenge, valid, spent, fail-closed, each key format and context mode, malformed values),
then a clean exit with no memory error."""

from __future__ import annotations

import base64
import shutil

from harness import (Daemon, Minter, Nginx, decode_challenge, http_request, parse_challenges,
                     parse_www_authenticate, read)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_module_under_valgrind(daemon: Daemon, minter: Minter, tmp_path) -> None:
    assert shutil.which("valgrind"), "valgrind is not installed: make deps installs it"
    log = tmp_path / "valgrind.log"
    nginx = Nginx(tmp_path / "nginx", daemon, wrapper=(
        "valgrind", "--error-exitcode=99", "--leak-check=no", f"--log-file={log}"))
    try:
        for path, replay in (("/protected/", 401), ("/fixed/", 401), ("/pem/", 401),
                             ("/url/", 401), ("/down/", 503)):
            _, headers, _ = http_request(nginx.port, "GET", path)
            challenge, keys, _ = parse_www_authenticate(headers["www-authenticate"])
            authorization = minter.authorization(challenge, keys[0])
            first = nginx.get(path, authorization)[0]
            assert (first, nginx.get(path, authorization)[0]) == (
                (503 if path == "/down/" else 200), replay), path
        # types 1 and 5 beside 2: challenges, the daemon's verdicts, the checks before it
        for path in ("/mixed/", "/mixed-fixed/"):
            _, headers, _ = http_request(nginx.port, "GET", path)
            for challenge, key in parse_challenges(headers["www-authenticate"]):
                token = minter.token(challenge, key)
                authorization = "PrivateToken token=" + b64(token)
                if decode_challenge(challenge)["token_type"] != 2:
                    # not accepted at a type 2 location; tampered; unknown key
                    assert nginx.get("/protected/", authorization)[0] == 401
                    for at in (len(token) - 1, 66):
                        bad = bytearray(token)
                        bad[at] ^= 1
                        assert nginx.get(path, "PrivateToken token=" + b64(bytes(bad)))[0] == 401
                assert nginx.get(path, authorization)[0] == 200, (path, challenge[:2])
                assert nginx.get(path, authorization)[0] == 401
        for value in ("PrivateToken token=" + "A" * 6000, "PrivateToken token=!!", "Basic x", "",
                      "PrivateToken token=a, token=b", "PrivateToken token=" + "A" * 472):
            assert nginx.get("/protected/", value)[0] == 401, value
    finally:
        status = nginx.stop()
    assert status == 0, read(log)
    assert "ERROR SUMMARY: 0 errors" in read(log), read(log)
