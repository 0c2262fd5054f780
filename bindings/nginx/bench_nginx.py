"""make bench-nginx: requests/s through nginx (2 workers, the privacypass module) for a protected
location, every request with a fresh valid token (minted beforehand from privacypassd, which
also records the spends in RocksDB), beside an open location of the same nginx.

The load generator is this script: asyncio, keep-alive HTTP/1.1 connections, one process. It
shares the machine's cores with nginx and the daemon, so on a small machine the open location's
figure is bounded by the generator, not by nginx.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))

from harness import Daemon, Minter, Nginx  # noqa: E402


async def one_connection(port: int, path: str, tokens: Iterator[Optional[str]],
                         latencies: List[float], statuses: List[int]) -> None:
    reader: Optional[asyncio.StreamReader] = None
    writer: Optional[asyncio.StreamWriter] = None
    try:
        for token in tokens:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = f"GET {path} HTTP/1.1\r\nHost: bench\r\n"
            if token is not None:
                head += f"Authorization: {token}\r\n"
            started = time.perf_counter()
            writer.write((head + "\r\n").encode())
            assert reader is not None
            header = await reader.readuntil(b"\r\n\r\n")
            lines = header.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses.append(status)
            if close:
                writer.close()
                reader, writer = None, None
    finally:
        if writer is not None:
            writer.close()


async def drive(port: int, path: str, items: List[Optional[str]],
                connections: int) -> Tuple[float, List[float], List[int]]:
    latencies: List[float] = []
    statuses: List[int] = []
    shared = iter(items)
    started = time.perf_counter()
    await asyncio.gather(*(one_connection(port, path, shared, latencies, statuses)
                           for _ in range(connections)))
    return time.perf_counter() - started, latencies, statuses


def report(name: str, elapsed: float, latencies: List[float], statuses: List[int]) -> float:
    latencies.sort()
    rate = len(latencies) / elapsed
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"| {name} | {len(latencies)} | {rate:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {counts} |")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=3000, help="fresh tokens to spend")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--open-requests", type=int, default=0,
                        help="requests to the open location (default: 3 x tokens)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="privacypass-bench-nginx-") as tmp:
        daemon = Daemon(Path(tmp) / "daemon")
        nginx = None
        try:
            nginx = Nginx(Path(tmp) / "nginx", daemon, secret=False, access_buffer=True)
            challenge, keys, _ = nginx.challenge("/protected/")
            started = time.perf_counter()
            tokens = Minter(daemon).many(challenge, keys[0], args.tokens,
                                         threads=min(4, os.cpu_count() or 1))
            minted = time.perf_counter() - started
            print(f"minted {len(tokens)} tokens from privacypassd in {minted:.1f} s "
                  f"({len(tokens) / minted:,.0f}/s)")
            print(f"nginx 2 workers, {args.connections} keep-alive connections, "
                  f"privacypassd with RocksDB (durable spends), cores: {os.cpu_count()}")
            print()
            print("| location | requests | req/s | p50 | p99 | statuses |")
            print("|---|---:|---:|---:|---:|---|")

            # warm both paths (connections to the daemon, page cache)
            asyncio.run(drive(nginx.port, "/", [None] * 200, 4))

            protected = report("/protected/ (a fresh token each)",
                               *asyncio.run(drive(nginx.port, "/protected/", list(tokens),
                                                  args.connections)))
            open_requests = args.open_requests or 3 * args.tokens
            unprotected = report("/ (open)", *asyncio.run(
                drive(nginx.port, "/", [None] * open_requests, args.connections)))
            replay = report("/protected/ (replayed, 401)", *asyncio.run(
                drive(nginx.port, "/protected/", tokens[:min(1000, len(tokens))],
                      args.connections)))
            missing = report("/protected/ (no token, 401)", *asyncio.run(
                drive(nginx.port, "/protected/", [None] * open_requests, args.connections)))
            del replay, missing
            print()
            print(f"protected/open: {protected / unprotected:.0%}")
        finally:
            if nginx is not None:
                nginx.stop()
            daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
