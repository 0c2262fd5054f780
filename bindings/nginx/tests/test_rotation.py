"""Key rotation seen from nginx: a key the issuer lists before it issues (its not-before ahead)
is offered from its not-before on, without a reload, while every listed key is accepted; and
dist/nginx/privacypass-directory-refresh keeps the directory file current (conditional GET,
check, reload, roll back a body nginx refuses)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from harness import HOME_RELEASE, Daemon, Minter, Nginx, binary, free_port, read
from test_nginx import assert_healthy
from test_token_types import challenges as offered

ROOT = Path(__file__).resolve().parents[3]
REFRESH = ROOT / "dist" / "nginx" / "privacypass-directory-refresh"
DIRECTORY_PATH = "/.well-known/private-token-issuer-directory"


def generate_key(keys_dir: Path, not_before: int, key_type: str = "blind-rsa-2048") -> None:
    """`privacypassd keys generate` of a key issuing from not_before."""
    daemon = binary("PRIVACYPASSD", HOME_RELEASE / "privacypassd")
    subprocess.run([str(daemon), "keys", "generate", "--type", key_type, "--keys-dir",
                    str(keys_dir), "--not-before", str(not_before)], check=True,
                   capture_output=True, env=dict(os.environ, PRIVACYPASS_LOG="warn"))


def new_daemon(directory: Path, rsa_not_before: Tuple[int, ...]) -> Daemon:
    """A daemon with a type 2 key issuing from each of rsa_not_before, and a type 1 and a type
    5 key issuing now (the harness's nginx configuration has locations of those types)."""
    keys_dir = directory / "data" / "keys"
    for not_before in rsa_not_before:
        generate_key(keys_dir, not_before)
    for key_type in ("voprf-p384", "voprf-ristretto255"):
        generate_key(keys_dir, int(time.time()) - 60, key_type)
    return Daemon(directory, voprf=False)


def wait_for_keys(daemon: Daemon, count: int) -> List[bytes]:
    deadline = time.monotonic() + 10
    while True:
        keys = [k for _, k in daemon.token_keys(2)]
        if len(keys) >= count or time.monotonic() > deadline:
            return keys
        time.sleep(0.1)


def sleep_until(instant: float) -> None:
    while time.time() < instant:
        time.sleep(min(0.2, max(0.0, instant - time.time())))


@pytest.fixture()
def rotating(tmp_path: Path) -> Iterator[Tuple[Daemon, Nginx, int]]:
    """A daemon whose keys directory holds a type 2 key issuing now and the next one, listed
    with a not-before 8 seconds ahead; nginx on its directory."""
    start = int(time.time()) + 8
    daemon = new_daemon(tmp_path / "privacypassd", (start - 68, start))
    try:
        nginx = Nginx(tmp_path / "nginx", daemon)
        try:
            yield daemon, nginx, start
        finally:
            nginx.stop()
    finally:
        daemon.stop()


def test_a_listed_key_is_offered_from_its_not_before_and_every_listed_key_is_accepted(
        rotating: Tuple[Daemon, Nginx, int]) -> None:
    daemon, nginx, start = rotating
    minter = Minter(daemon)
    # The issuer lists the next key first, with its not-before (RFC 9578 section 4).
    listed = [k for _, k in daemon.token_keys(2)]
    assert len(listed) == 2, listed
    following, current = listed
    workers = nginx.worker_pids()

    # Before its not-before the next key is listed but not offered: a client asking for it
    # would get no token (the issuer does not sign with it yet).
    for path in ("/protected/", "/fixed/"):
        assert [k for _, k in offered(nginx, path)] == [current], path
    challenge = offered(nginx, "/protected/")[0][0]
    status, _, _ = nginx.get("/protected/", minter.authorization(challenge, current))
    assert status == 200

    # From its not-before the workers offer it, with no reload.
    sleep_until(start + 1.0)
    for path in ("/protected/", "/fixed/"):
        assert [k for _, k in offered(nginx, path)] == [following], path
    challenge = offered(nginx, "/protected/")[0][0]
    status, _, _ = nginx.get("/protected/", minter.authorization(challenge, following))
    assert status == 200
    # The key offered before still verifies (its tokens are out; the issuer decides when they
    # stop redeeming).
    status, _, _ = nginx.get("/protected/", minter.authorization(challenge, current))
    assert status == 200
    assert nginx.worker_pids() == workers
    assert_healthy(nginx)


def run_refresh(nginx: Nginx, url: str) -> subprocess.CompletedProcess:
    file = nginx.prefix / "conf" / "directory.json"
    return subprocess.run([str(REFRESH), url, str(file), *nginx.command()],
                          capture_output=True, text=True, timeout=60)


def test_the_refresh_script_takes_a_new_directory_reloads_and_rolls_back_a_bad_one(
        tmp_path: Path) -> None:
    daemon = new_daemon(tmp_path / "privacypassd", (int(time.time()) - 60,))
    try:
        nginx = Nginx(tmp_path / "nginx", daemon)
        try:
            check_refresh(daemon, nginx, tmp_path)
        finally:
            nginx.stop()
    finally:
        daemon.stop()


def check_refresh(daemon: Daemon, nginx: Nginx, tmp_path: Path) -> None:
    minter = Minter(daemon)
    file = nginx.prefix / "conf" / "directory.json"
    url = daemon.url + DIRECTORY_PATH
    (current,) = [k for _, k in daemon.token_keys(2)]

    # The first run takes the daemon's body (the file nginx started with is the same bytes):
    # nothing to reload; it remembers the ETag.
    first = run_refresh(nginx, url)
    assert first.returncode == 0, first.stderr
    assert "is current" in first.stdout, first.stdout
    assert (file.parent / "directory.json.etag").read_text().strip()
    workers = nginx.worker_pids()

    # The issuer publishes the next key, 6 seconds ahead; the daemon reloads its keys.
    start = int(time.time()) + 6
    generate_key(daemon.dir / "data" / "keys", start)
    daemon.process.send_signal(signal.SIGHUP)
    assert len(wait_for_keys(daemon, 2)) == 2
    following = [k for _, k in daemon.token_keys(2)][0]
    assert following != current

    done = run_refresh(nginx, url)
    assert done.returncode == 0, done.stderr
    assert "updated" in done.stdout and "nginx reloaded" in done.stdout, done.stdout
    assert file.read_bytes() == daemon.directory()
    assert not [p for p in file.parent.iterdir() if p.name.startswith(".directory.json")]
    reloaded = sorted(nginx.wait_for_workers(2, exclude=tuple(workers)))
    # the old workers leave (they stop serving as soon as the master told them)
    deadline = time.monotonic() + 10
    while nginx.worker_pids() != reloaded and time.monotonic() < deadline:
        time.sleep(0.05)
    assert nginx.worker_pids() == reloaded
    # The new workers know both keys and offer the one issuing.
    assert [k for _, k in offered(nginx, "/protected/")] == [current]
    sleep_until(start + 1.0)
    challenge, key = offered(nginx, "/protected/")[0]
    assert key == following
    assert nginx.get("/protected/", minter.authorization(challenge, following))[0] == 200

    # Unchanged: the daemon answers the remembered ETag with 304, and nginx is left alone.
    same = run_refresh(nginx, url)
    assert same.returncode == 0, same.stderr
    assert "not modified" in same.stdout, same.stdout
    assert nginx.worker_pids() == reloaded

    assert_healthy(nginx)

    # A body nginx refuses (not a directory) is put back: the file and nginx stay as they were.
    # (nginx -t writes its refusal to the error log, which assert_healthy would take for a
    # failure of the running nginx.)
    before = file.read_bytes()
    bad = run_refresh(nginx, daemon.url + "/metrics")
    assert bad.returncode == 1
    assert "nginx refused" in bad.stderr, bad.stderr
    assert file.read_bytes() == before
    assert nginx.worker_pids() == reloaded

    # A fetch that fails changes nothing either.
    gone = run_refresh(nginx, f"http://127.0.0.1:{free_port()}{DIRECTORY_PATH}")
    assert gone.returncode == 1
    assert "unchanged" in gone.stderr, gone.stderr
    assert file.read_bytes() == before
    assert nginx.process.poll() is None
    assert nginx.worker_pids() == reloaded
    assert nginx.get("/")[0] == 200
    assert [k for _, k in offered(nginx, "/protected/")] == [following]
    assert "holds no usable PUBLIC KEY block" in read(nginx.error_log)

