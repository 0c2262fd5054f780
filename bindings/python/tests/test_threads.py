"""One Verifier, Redeemer and Issuer shared by 8 threads (ctypes releases the GIL in each call)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import List

import pytest

import privacypass as pp
from conftest import make_token

THREADS = 8
TOKENS_PER_THREAD = 4
VERIFIES_PER_THREAD = 25


def test_shared_verifier_and_redeemer_from_8_threads(issuer: pp.Issuer, challenge: bytes) -> None:
    tokens = [make_token(issuer, challenge) for _ in range(THREADS * TOKENS_PER_THREAD)]
    shared = make_token(issuer, challenge)
    tampered = bytearray(tokens[0])
    tampered[200] ^= 0x80
    barrier = threading.Barrier(THREADS)

    with pp.Verifier.from_spki(issuer.public_key) as verifier, \
            pp.Redeemer(verifier, "memory:") as redeemer:

        def work(index: int) -> List[str]:
            outcomes = []
            barrier.wait()
            for i in range(VERIFIES_PER_THREAD):
                verifier.verify(tokens[(index + i) % len(tokens)], challenge)
                outcomes.append("verified")
                if i % 5 == 0:
                    with pytest.raises(pp.VerificationFailed):
                        verifier.verify(bytes(tampered))
                    outcomes.append("rejected")
            for t in tokens[index * TOKENS_PER_THREAD:(index + 1) * TOKENS_PER_THREAD]:
                redeemer.redeem(t, challenge)
                outcomes.append("redeemed")
            try:  # all race on one token: exactly one wins
                redeemer.redeem(shared)
                outcomes.append("redeemed")
            except pp.AlreadySpent:
                outcomes.append("already spent")
            return outcomes

        with ThreadPoolExecutor(THREADS) as pool:
            results = [o for outcomes in pool.map(work, range(THREADS)) for o in outcomes]

    assert results.count("verified") == THREADS * VERIFIES_PER_THREAD
    assert results.count("rejected") == THREADS * ((VERIFIES_PER_THREAD + 4) // 5)
    assert results.count("redeemed") == THREADS * TOKENS_PER_THREAD + 1
    assert results.count("already spent") == THREADS - 1


def test_issuing_from_8_threads(issuer: pp.Issuer, challenge: bytes) -> None:
    with pp.Client(issuer.public_key) as client, \
            pp.Verifier.from_spki(issuer.public_key) as verifier:

        def work(_: int) -> bytes:
            with client.request(challenge) as pending:
                token = pending.finalize(issuer.issue(pending.token_request))
            verifier.verify(token, challenge)
            return token

        with ThreadPoolExecutor(THREADS) as pool:
            tokens = list(pool.map(work, range(THREADS * 2)))
    assert len(set(tokens)) == THREADS * 2


def test_closing_while_other_threads_verify(issuer: pp.Issuer, challenge: bytes) -> None:
    """close() during calls on other threads: they finish (or see ClosedHandleError), and the
    C handle is freed by the last of them, never under one."""
    token = make_token(issuer, challenge)
    for _ in range(5):
        verifier = pp.Verifier.from_spki(issuer.public_key)
        started = threading.Barrier(THREADS + 1)
        counts = {"ok": 0, "closed": 0}
        lock = threading.Lock()

        def work() -> None:
            started.wait()
            for _ in range(50):
                try:
                    verifier.verify(token, challenge)
                    outcome = "ok"
                except pp.ClosedHandleError:
                    outcome = "closed"
                with lock:
                    counts[outcome] += 1

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for t in threads:
            t.start()
        started.wait()
        verifier.close()
        for t in threads:
            t.join()
        assert counts["ok"] + counts["closed"] == THREADS * 50
        assert verifier.closed
