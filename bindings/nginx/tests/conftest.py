"""Fixtures: one privacypassd and one nginx (2 workers, the module loaded) for the session, both
on 127.0.0.1 in temporary directories, stopped at the end even when a test fails."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Daemon, Minter, Nginx  # noqa: E402


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("privacypassd"))
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory, daemon: Daemon) -> Iterator[Nginx]:
    n = Nginx(tmp_path_factory.mktemp("nginx"), daemon)
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture(scope="session")
def minter(daemon: Daemon) -> Minter:
    return Minter(daemon)
