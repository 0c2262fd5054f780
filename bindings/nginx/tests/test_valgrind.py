"""The module under valgrind: nginx in one process (no master), every path of the module taken
(challenge, valid, spent, fail-closed, each key format and context mode, malformed values),
then a clean exit with no memory error."""

from __future__ import annotations

import shutil

from harness import Daemon, Minter, Nginx, http_request, parse_www_authenticate, read


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
        for value in ("PrivateToken token=" + "A" * 6000, "PrivateToken token=!!", "Basic x", "",
                      "PrivateToken token=a, token=b", "PrivateToken token=" + "A" * 472):
            assert nginx.get("/protected/", value)[0] == 401, value
    finally:
        status = nginx.stop()
    assert status == 0, read(log)
    assert "ERROR SUMMARY: 0 errors" in read(log), read(log)
