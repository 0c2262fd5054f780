"""Shared fixtures: the RFC 9578 vectors (type 2, and the VOPRF types 1 and 5), an issuer, fresh
tokens, and running privacypassd daemons."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

import privacypass as pp

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent  # bindings/python
REPO_ROOT = PACKAGE_ROOT.parent.parent
VECTORS_DIR = REPO_ROOT / "tests" / "vectors"
VECTORS = VECTORS_DIR / "rfc9578-type2-blind-rsa.json"
# The privately verifiable types' vectors: (file, token type). The RFC's type 1 vectors name
# the keys skS / pkS, the batched-tokens ones sk_s / pk_s; load_voprf_vectors calls them skS, pkS.
VOPRF_VECTOR_FILES: List[Tuple[str, int]] = [
    ("rfc9578-type1-voprf-p384.json", pp.TOKEN_TYPE_VOPRF_P384),
    ("batched-private_p384_rs.json", pp.TOKEN_TYPE_VOPRF_P384),
    ("batched-private_ristretto255_rs.json", pp.TOKEN_TYPE_VOPRF_RISTRETTO255),
    ("batched-tokens-draft-voprf-ristretto255.json", pp.TOKEN_TYPE_VOPRF_RISTRETTO255),
]
HEADER = REPO_ROOT / "include" / "privacypass.h"
README = PACKAGE_ROOT / "README.md"
DEFAULT_DAEMON = Path.home() / ".cache" / "privacypass" / "target" / "release" / "privacypassd"


def pytest_report_header(config: pytest.Config) -> List[str]:
    return [
        f"privacypass package: {Path(pp.__file__).parent}",
        f"libprivacypass {pp.library_version()}: {pp.library_path()}",
    ]


def load_vectors() -> List[Dict[str, bytes]]:
    with open(VECTORS, encoding="utf-8") as f:
        return [{name: bytes.fromhex(value) for name, value in v.items()} for v in json.load(f)]


@pytest.fixture(scope="session")
def vectors() -> List[Dict[str, bytes]]:
    return load_vectors()


def load_voprf_vectors(name: str) -> List[Dict[str, bytes]]:
    """One VOPRF vector file, every value bytes, the keys named skS and pkS."""
    renames = {"sk_s": "skS", "pk_s": "pkS"}
    with open(VECTORS_DIR / name, encoding="utf-8") as f:
        return [{renames.get(key, key): bytes.fromhex(value) for key, value in v.items()}
                for v in json.load(f)]


@pytest.fixture(scope="session")
def issuer(vectors: List[Dict[str, bytes]]) -> Iterator[pp.Issuer]:
    """The first vector's key: no key generation."""
    with pp.Issuer.from_pem(vectors[0]["skS"]) as issuer:
        yield issuer


@pytest.fixture(scope="session")
def challenge() -> bytes:
    return pp.encode_challenge("issuer.example")


def run_script(tmp_path: Path, name: str, source: str) -> subprocess.CompletedProcess:
    """Runs `source` in a fresh interpreter that imports the package these tests import (also
    when it comes from a relative PYTHONPATH); its output as text."""
    script = tmp_path / name
    script.write_text(source, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(pp.__file__).resolve().parent.parent)] +
        [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def make_token(issuer: pp.Issuer, challenge: bytes) -> bytes:
    with pp.Client(issuer.public_key) as client, client.request(challenge) as pending:
        return pending.finalize(issuer.issue(pending.token_request))


# ---------------------------------------------------------------------------------------------
# privacypassd


class Daemon:
    def __init__(self, process: subprocess.Popen, url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log
        self.keys_dir = log.parent / "data" / "keys"  # as running_daemon lays it out

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.read()

    def post(self, path: str, body: bytes, content_type: str) -> bytes:
        request = urllib.request.Request(self.url + path, data=body, method="POST",
                                         headers={"Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()


def _first_line(process: subprocess.Popen, timeout: float) -> Optional[str]:
    lines: "queue.Queue[str]" = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        lines.put(process.stdout.readline())
        for _ in process.stdout:  # keep draining so that the daemon never blocks on stdout
            pass

    threading.Thread(target=read, daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


def daemon_binary() -> Path:
    binary = Path(os.environ.get("PRIVACYPASSD") or DEFAULT_DAEMON)
    if not os.access(binary, os.X_OK):
        pytest.fail(f"privacypassd not found at {binary}: build it (make build) or set PRIVACYPASSD")
    return binary


@contextmanager
def running_daemon(data_dir: Path, key_types: Sequence[str] = ()) -> Iterator[Daemon]:
    """privacypassd serving DATA_DIR/data on a free loopback port, stopped at the end. With
    ``key_types`` (``privacypassd keys generate --type`` values: ``voprf-p384``, ...) those keys
    are generated into DATA_DIR/data/keys first and the daemon serves them only; without, it
    generates its RSA key itself."""
    binary = daemon_binary()
    log = data_dir / "privacypassd.log"
    keys_dir = data_dir / "data" / "keys"
    for key_type in key_types:
        subprocess.run([str(binary), "keys", "generate", "--type", key_type,
                        "--keys-dir", str(keys_dir)],
                       check=True, capture_output=True, timeout=60)
    generate = "false" if key_types else "true"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir / "data"),
             "--generate-key-if-missing", generate],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line = _first_line(process, timeout=60)
        prefix = "privacypassd listening on "
        if not line or not line.startswith(prefix):
            pytest.fail(f"privacypassd did not start (first line {line!r}); its log:\n"
                        f"{log.read_text(errors='replace')}")
        url = line[len(prefix):].strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield Daemon(process, url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with running_daemon(tmp_path_factory.mktemp("privacypassd")) as running:
        yield running


@pytest.fixture(scope="session")
def voprf_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon with one VOPRF P-384 and one VOPRF ristretto255 key (in DATA_DIR/data/keys)."""
    with running_daemon(tmp_path_factory.mktemp("privacypassd-voprf"),
                        ["voprf-p384", "voprf-ristretto255"]) as running:
        yield running
