"""DirectoryVerifier against real HTTP servers on the loopback: the first fetch, key rotation,
ETag / 304, failures kept out (with backoff), redirects to another origin refused, verifies
from several threads during refreshes, close(), the redeemers it keeps current (rotations,
spends kept, one made during a refresh, failed swaps, weak references, threads), a running
privacypassd's directory, and the README's example."""

from __future__ import annotations

import base64
import gc
import json
import re
import threading
import time
import urllib.error
import urllib.request
import weakref
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

import privacypass as pp
from privacypass import refresher
from privacypass.refresher import DirectoryVerifier, RedirectRefused
from conftest import README, Daemon, make_token, run_script

PATH = "/.well-known/private-token-issuer-directory"
DEADLINE = 5.0  # seconds to wait for what a refresh should bring about


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def directory(*spkis: bytes) -> bytes:
    """A directory listing these type 2 keys (and a type 1 entry, which verifiers skip)."""
    keys = [{"token-type": 1, "token-key": "AAAA", "not-before": 0}]
    keys += [{"token-type": 2, "token-key": b64url(spki), "not-before": 0} for spki in spkis]
    return json.dumps({"issuer-request-uri": "https://issuer.example/token-request",
                       "token-keys": keys}).encode()


def wait_for(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline} s: {what}")
        time.sleep(0.01)


def run_threads(work: Callable[[int], None], stop: threading.Event,
                done: Callable[[], bool], what: str, count: int = 8) -> None:
    """work(0) ... work(count - 1) in threads until done() (wait_for's deadline at most), then
    stop is set and the threads joined."""
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    try:
        wait_for(done, what)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)


def verifies(dv: DirectoryVerifier, token: bytes, challenge: bytes) -> bool:
    try:
        dv.verify(token, challenge)
        return True
    except pp.VerificationFailed:
        return False


def refresh_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("privacypass-directory")]


class Request:
    def __init__(self, path: str, headers: Dict[str, str], status: int) -> None:
        self.time = time.monotonic()
        self.path = path
        self.headers = headers
        self.status = status


class DirectoryServer:
    """An issuer's directory on 127.0.0.1, answering what its attributes say at each request:
    ``body`` with ``cache_control`` and ``etag`` (304 when If-None-Match names it), or
    ``status`` with a text body, or a 302 to ``location``. Every request is recorded."""

    def __init__(self, body: bytes = b"", *, cache_control: Optional[str] = "max-age=60",
                 etag: Optional[str] = None) -> None:
        self.body = body
        self.cache_control = cache_control
        self.etag = etag
        self.status = 200
        self.location: Optional[str] = None
        self.paths: Dict[str, bytes] = {}  # other paths served, same headers
        self.requests: List[Request] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                status, headers, body = server.answer(self.path, dict(self.headers.items()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def answer(self, path: str, headers: Dict[str, str]
               ) -> Tuple[int, List[Tuple[str, str]], bytes]:
        with self.lock:
            out: List[Tuple[str, str]] = []
            if self.cache_control is not None:
                out.append(("Cache-Control", self.cache_control))
            if self.location is not None and path == PATH:
                status, out, body = 302, [("Location", self.location)], b""
            elif self.status != 200:
                status, body = self.status, b"server error"
            elif self.etag is not None and headers.get("If-None-Match") == self.etag:
                status, body = 304, b""
                out.append(("ETag", self.etag))
            else:
                status, body = 200, self.paths.get(path, self.body)
                out.append(("Content-Type", "application/private-token-issuer-directory"))
                if self.etag is not None:
                    out.append(("ETag", self.etag))
            self.requests.append(Request(path, headers, status))
            return status, out, body

    def set(self, **changes: object) -> None:
        with self.lock:
            for name, value in changes.items():
                assert hasattr(self, name), name
                setattr(self, name, value)

    def count(self, status: Optional[int] = None) -> int:
        with self.lock:
            return sum(1 for r in self.requests if status is None or r.status == status)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def servers() -> Iterator[Callable[..., DirectoryServer]]:
    """Makes DirectoryServers, each shut down at the end of the test."""
    made: List[DirectoryServer] = []

    def make(*args: object, **kwargs: object) -> DirectoryServer:
        server = DirectoryServer(*args, **kwargs)  # type: ignore[arg-type]
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture(scope="module")
def issuer_b() -> Iterator[pp.Issuer]:
    """A second key, for rotations (the session's `issuer` is the first)."""
    with pp.Issuer.generate() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def tokens(issuer: pp.Issuer, issuer_b: pp.Issuer, challenge: bytes) -> Dict[str, bytes]:
    return {"a": make_token(issuer, challenge), "b": make_token(issuer_b, challenge)}


class Errors:
    """An on_error that records what it is given."""

    def __init__(self) -> None:
        self.seen: List[Exception] = []
        self.lock = threading.Lock()

    def __call__(self, error: Exception) -> None:
        with self.lock:
            self.seen.append(error)

    def of(self, kind: type) -> List[Exception]:
        with self.lock:
            return [e for e in self.seen if isinstance(e, kind)]


# ---------------------------------------------------------------------------------------------
# The first fetch


def test_first_fetch_builds_the_verifier(servers: Callable[..., DirectoryServer],
                                         issuer: pp.Issuer, tokens: Dict[str, bytes],
                                         challenge: bytes) -> None:
    server = servers(directory(issuer.public_key), etag='"v1"')
    before = time.time()
    with DirectoryVerifier(server.url, min_refresh=0.05) as dv:
        assert dv.url == server.url and not dv.closed
        assert dv.etag == '"v1"'
        assert before <= dv.last_refresh <= time.time()
        dv.verify(tokens["a"], challenge)
        dv.verify(tokens["a"])
        dv.verify_authorization(pp.encode_authorization(tokens["a"]), challenge)
        with pytest.raises(pp.VerificationFailed):
            dv.verify(tokens["b"], challenge)
        with pytest.raises(pp.VerificationFailed):
            dv.verify(tokens["a"], pp.encode_challenge("other.example"))
        with pytest.raises(pp.InvalidParams):
            dv.verify(tokens["a"][:-1])
        # max-age=60: no refresh in the next half second, min_refresh notwithstanding.
        time.sleep(0.5)
        assert server.count() == 1
        first = server.requests[0]
        assert "If-None-Match" not in first.headers
        assert "application/private-token-issuer-directory" in first.headers["Accept"]
    assert dv.closed
    assert "DirectoryVerifier" in pp.__all__ and pp.DirectoryVerifier is DirectoryVerifier


@pytest.mark.parametrize("status, body, error", [
    (500, b"", urllib.error.HTTPError),
    (404, b"", urllib.error.HTTPError),
    (200, b"<html>not a directory</html>", pp.InvalidInput),
    (200, b"", pp.InvalidInput),
    (200, b'{"token-keys": []}', pp.InvalidKey),
    (200, b'{"token-keys": [{"token-type": 1, "token-key": "AA"}]}', pp.InvalidKey),
])
def test_constructor_raises_when_the_first_fetch_fails(
        servers: Callable[..., DirectoryServer], status: int, body: bytes, error: type) -> None:
    server = servers(body)
    server.set(status=status)
    with pytest.raises(error) as caught:
        DirectoryVerifier(server.url)
    if isinstance(caught.value, urllib.error.HTTPError):
        assert caught.value.code == status
    assert server.count() == 1
    assert refresh_threads() == []  # none left behind


def test_constructor_raises_when_nothing_listens() -> None:
    server = DirectoryServer(b"")
    url = server.url
    server.close()
    with pytest.raises(urllib.error.URLError):
        DirectoryVerifier(url, timeout=2)


@pytest.mark.parametrize("url, kwargs", [
    ("ftp://127.0.0.1/dir", {}),
    ("file:///etc/passwd", {}),
    ("not a url", {}),
    ("http://127.0.0.1/", {"min_refresh": 0}),
    ("http://127.0.0.1/", {"min_refresh": 10, "max_refresh": 5}),
    ("http://127.0.0.1/", {"timeout": 0}),
    ("http://127.0.0.1/", {"jitter": 1.5}),
])
def test_bad_arguments(url: str, kwargs: Dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DirectoryVerifier(url, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Refreshes


def test_rotation_replaces_the_key_set(servers: Callable[..., DirectoryServer],
                                       issuer: pp.Issuer, issuer_b: pp.Issuer,
                                       tokens: Dict[str, bytes], challenge: bytes) -> None:
    server = servers(directory(issuer.public_key), cache_control="max-age=1", etag='"a"')
    with DirectoryVerifier(server.url, min_refresh=0.05, jitter=0.0) as dv:
        assert verifies(dv, tokens["a"], challenge)
        assert not verifies(dv, tokens["b"], challenge)
        # The issuer publishes its next key beside the current one...
        server.set(body=directory(issuer.public_key, issuer_b.public_key), etag='"ab"')
        wait_for(lambda: verifies(dv, tokens["b"], challenge), "the new key verifies")
        assert verifies(dv, tokens["a"], challenge)
        assert dv.etag == '"ab"'
        # ... then drops the old one: its tokens stop verifying.
        server.set(body=directory(issuer_b.public_key), etag='"b"')
        wait_for(lambda: not verifies(dv, tokens["a"], challenge), "the old key is dropped")
        assert verifies(dv, tokens["b"], challenge)
        assert dv.etag == '"b"'
        # Refreshes follow max-age=1 (jitter 0): about one a second, not one per min_refresh.
        assert server.count() <= 6


def test_etag_and_304_keep_the_keys(servers: Callable[..., DirectoryServer], issuer: pp.Issuer,
                                    tokens: Dict[str, bytes], challenge: bytes) -> None:
    server = servers(directory(issuer.public_key), cache_control="max-age=1", etag='W/"v1"')
    with DirectoryVerifier(server.url, min_refresh=0.05) as dv:
        first = dv.last_refresh
        wait_for(lambda: server.count(304) >= 2, "two 304 answers")
        revalidations = [r for r in server.requests if r.status == 304]
        assert all(r.headers.get("If-None-Match") == 'W/"v1"' for r in revalidations)
        wait_for(lambda: dv.last_refresh > first, "the 304 restarts the clock")
        assert dv.etag == 'W/"v1"'
        dv.verify(tokens["a"], challenge)
        # While 304s keep coming, the body is never fetched again.
        assert server.count(200) == 1


@pytest.mark.parametrize("cache_control", ["no-store", "no-cache", "max-age=0", "max-age=oops"])
def test_no_freshness_refreshes_at_min_refresh(servers: Callable[..., DirectoryServer],
                                               issuer: pp.Issuer, cache_control: str) -> None:
    server = servers(directory(issuer.public_key), cache_control=cache_control)
    with DirectoryVerifier(server.url, min_refresh=0.05):
        wait_for(lambda: server.count() >= 5, "refreshes every min_refresh")


def test_max_refresh_caps_a_long_max_age(servers: Callable[..., DirectoryServer],
                                         issuer: pp.Issuer) -> None:
    server = servers(directory(issuer.public_key), cache_control="max-age=86400")
    with DirectoryVerifier(server.url, min_refresh=0.05, max_refresh=0.1):
        wait_for(lambda: server.count() >= 4, "refreshes every max_refresh")


def test_freshness_headers() -> None:
    def lifetime(**headers: str) -> Optional[float]:
        message = Message()
        for name, value in headers.items():
            message[name.replace("_", "-")] = value
        return refresher._lifetime(message)

    assert lifetime() is None
    assert lifetime(Cache_Control="public, max-age=300, must-revalidate") == 300
    assert lifetime(Cache_Control='max-age="120"') == 120
    assert lifetime(Cache_Control="max-age=300", Age="100") == 200
    assert lifetime(Cache_Control="max-age=300", Age="400") == 0
    assert lifetime(Cache_Control="max-age=300, no-cache") == 0
    assert lifetime(Cache_Control="no-store") == 0
    assert lifetime(Cache_Control="max-age=-5") == 0
    assert lifetime(Expires="Wed, 21 Oct 2015 07:28:00 GMT",
                    Date="Wed, 21 Oct 2015 07:18:00 GMT") == 600
    assert lifetime(Expires="0") == 0
    # max-age wins over Expires.
    assert lifetime(Cache_Control="max-age=5", Expires="Wed, 21 Oct 2015 07:28:00 GMT",
                    Date="Wed, 21 Oct 2015 07:18:00 GMT") == 5


# ---------------------------------------------------------------------------------------------
# Failures


def test_failures_keep_the_last_good_keys(servers: Callable[..., DirectoryServer],
                                          issuer: pp.Issuer, issuer_b: pp.Issuer,
                                          tokens: Dict[str, bytes], challenge: bytes) -> None:
    server = servers(directory(issuer.public_key), cache_control="max-age=0", etag='"a"')
    errors = Errors()
    with DirectoryVerifier(server.url, min_refresh=0.05, on_error=errors) as dv:
        # 500: reported, keys kept.
        server.set(status=500)
        wait_for(lambda: errors.of(urllib.error.HTTPError), "the 500 reported")
        assert {e.code for e in errors.of(urllib.error.HTTPError)} == {500}  # type: ignore
        dv.verify(tokens["a"], challenge)
        assert dv.etag == '"a"'
        # A body that is no directory, and one without a type 2 key: the same.
        server.set(status=200, body=b"garbage", etag='"garbage"')
        wait_for(lambda: errors.of(pp.InvalidInput), "the garbage body reported")
        dv.verify(tokens["a"], challenge)
        server.set(body=b'{"token-keys": []}', etag='"empty"')
        wait_for(lambda: errors.of(pp.InvalidKey), "the empty directory reported")
        dv.verify(tokens["a"], challenge)
        assert not verifies(dv, tokens["b"], challenge)
        assert dv.etag == '"a"'  # the ETag of the keys in use, never a failed body's
        # The issuer recovers: its new directory is picked up.
        server.set(body=directory(issuer_b.public_key), etag='"b"')
        wait_for(lambda: verifies(dv, tokens["b"], challenge), "the recovery picked up")
        assert not verifies(dv, tokens["a"], challenge)


def test_failures_back_off(servers: Callable[..., DirectoryServer], issuer: pp.Issuer) -> None:
    # max-age=1: retries start at min_refresh (0.05 s) and double, capped at 1 s.
    server = servers(directory(issuer.public_key), cache_control="max-age=1")
    errors = Errors()
    with DirectoryVerifier(server.url, min_refresh=0.05, jitter=0.0, on_error=errors):
        server.set(status=503)
        wait_for(lambda: server.count(503) >= 5, "five failed refreshes", deadline=10)
        times = [r.time for r in server.requests if r.status == 503][:5]
        gaps = [b - a for a, b in zip(times, times[1:])]
        # 0.05, 0.1, 0.2, 0.4 s (lower bounds only: a loaded machine only makes them longer).
        assert gaps[0] >= 0.045 and gaps[1] >= 0.09 and gaps[2] >= 0.18 and gaps[3] >= 0.36, gaps
        assert len(errors.of(urllib.error.HTTPError)) >= 5


def test_on_error_that_raises_does_not_stop_refreshing(
        servers: Callable[..., DirectoryServer], issuer: pp.Issuer, issuer_b: pp.Issuer,
        tokens: Dict[str, bytes], challenge: bytes) -> None:
    server = servers(directory(issuer.public_key), cache_control="no-store")
    calls: List[Exception] = []

    def on_error(error: Exception) -> None:
        calls.append(error)
        raise RuntimeError("a broken error handler")

    with DirectoryVerifier(server.url, min_refresh=0.05, on_error=on_error) as dv:
        server.set(status=500)
        wait_for(lambda: len(calls) >= 2, "on_error called again after raising")
        server.set(status=200, body=directory(issuer_b.public_key))
        wait_for(lambda: verifies(dv, tokens["b"], challenge), "refreshes go on")


# ---------------------------------------------------------------------------------------------
# One issuer only


@pytest.mark.parametrize("other", ["port", "host"])
def test_redirect_to_another_origin_is_refused(
        servers: Callable[..., DirectoryServer], issuer: pp.Issuer, issuer_b: pp.Issuer,
        tokens: Dict[str, bytes], challenge: bytes, other: str) -> None:
    server = servers(directory(issuer.public_key), cache_control="max-age=0")
    elsewhere = servers(directory(issuer_b.public_key))
    # Another port on 127.0.0.1, or the same server by another name: both another origin.
    target = (elsewhere.url if other == "port"
              else f"http://localhost:{server.port}/moved")
    server.paths["/moved"] = directory(issuer_b.public_key)
    errors = Errors()
    with DirectoryVerifier(server.url, min_refresh=0.05, on_error=errors) as dv:
        server.set(location=target)
        wait_for(lambda: len(errors.of(RedirectRefused)) >= 2, "the redirect refused")
        refused = errors.of(RedirectRefused)[0]
        assert isinstance(refused, urllib.error.HTTPError) and refused.code == 302
        assert target in str(refused)
        assert elsewhere.count() == 0 and server.count() == server.count(200) + server.count(302)
        assert all(r.path == PATH for r in server.requests)  # /moved never fetched
        assert verifies(dv, tokens["a"], challenge)
        assert not verifies(dv, tokens["b"], challenge)
    # The first fetch refuses it as well.
    with pytest.raises(RedirectRefused):
        DirectoryVerifier(server.url)


def test_redirect_within_the_origin_is_followed(
        servers: Callable[..., DirectoryServer], issuer: pp.Issuer, issuer_b: pp.Issuer,
        tokens: Dict[str, bytes], challenge: bytes) -> None:
    server = servers(directory(issuer.public_key), cache_control="max-age=0")
    server.paths["/moved"] = directory(issuer_b.public_key)
    errors = Errors()
    with DirectoryVerifier(server.url, min_refresh=0.05, on_error=errors) as dv:
        server.set(location=f"http://127.0.0.1:{server.port}/moved")
        wait_for(lambda: verifies(dv, tokens["b"], challenge), "the redirect followed")
        assert not verifies(dv, tokens["a"], challenge)
        assert errors.seen == []


def test_an_own_opener_that_follows_redirects_is_checked(
        servers: Callable[..., DirectoryServer], issuer: pp.Issuer, issuer_b: pp.Issuer,
        tokens: Dict[str, bytes], challenge: bytes) -> None:
    server = servers(directory(issuer.public_key), cache_control="max-age=0")
    elsewhere = servers(directory(issuer_b.public_key))
    errors = Errors()
    opener = urllib.request.build_opener()  # the standard redirect handler: follows anything
    with DirectoryVerifier(server.url, min_refresh=0.05, on_error=errors, opener=opener) as dv:
        server.set(location=elsewhere.url)
        wait_for(lambda: errors.of(RedirectRefused), "the other origin's answer refused")
        assert elsewhere.count() >= 1  # fetched by that opener, but never used
        assert verifies(dv, tokens["a"], challenge)
        assert not verifies(dv, tokens["b"], challenge)


# ---------------------------------------------------------------------------------------------
# Threads and close()


def test_verify_from_threads_during_refreshes(servers: Callable[..., DirectoryServer],
                                              issuer: pp.Issuer, issuer_b: pp.Issuer,
                                              tokens: Dict[str, bytes], challenge: bytes,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Each verify call pauses before it reaches the C library, as a preempted thread would:
    # a Verifier closed by a refresh in that moment would raise ClosedHandleError.
    for name in ("verify", "verify_authorization"):
        original = getattr(pp.Verifier, name)

        def slow(self: pp.Verifier, *args: object, _original: Callable[..., None] = original
                 ) -> None:
            time.sleep(0.002)
            _original(self, *args)

        monkeypatch.setattr(pp.Verifier, name, slow)
    # No ETag, no-store: every refresh (each 50 ms) is a 200 and swaps the Verifier.
    server = servers(directory(issuer.public_key, issuer_b.public_key), cache_control="no-store")
    failures: List[BaseException] = []
    stop = threading.Event()
    verified = [0] * 8
    with DirectoryVerifier(server.url, min_refresh=0.05) as dv:
        def work(index: int) -> None:
            try:
                while not stop.is_set():
                    dv.verify(tokens["a"], challenge)
                    dv.verify_authorization(pp.encode_authorization(tokens["b"]), challenge)
                    verified[index] += 1
            except BaseException as err:  # noqa: BLE001 (reported below)
                failures.append(err)

        run_threads(work, stop, lambda: server.count() >= 15 or bool(failures), "15 refreshes")
    assert failures == []
    assert all(count > 0 for count in verified), verified


def test_replaced_verifiers_are_closed(servers: Callable[..., DirectoryServer],
                                       issuer: pp.Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    server = servers(directory(issuer.public_key), cache_control="no-store")
    made: List[pp.Verifier] = []
    original = pp.Verifier.from_directory

    def recording(directory_json: pp.Text) -> pp.Verifier:
        verifier = original(directory_json)
        made.append(verifier)
        return verifier

    monkeypatch.setattr(pp.Verifier, "from_directory", staticmethod(recording))
    with DirectoryVerifier(server.url, min_refresh=0.05):
        wait_for(lambda: len(made) >= 4, "refreshes")
        # Every Verifier but the one in use is closed as soon as it is replaced.
        wait_for(lambda: sum(not v.closed for v in made) == 1, "one open Verifier")
    assert all(v.closed for v in made)


@pytest.mark.parametrize("then", ["refreshes", "close"])
def test_a_verify_in_flight_finishes_on_its_keys(
        servers: Callable[..., DirectoryServer], issuer: pp.Issuer, issuer_b: pp.Issuer,
        tokens: Dict[str, bytes], challenge: bytes, monkeypatch: pytest.MonkeyPatch,
        then: str) -> None:
    """A verify call that has taken the current Verifier and not yet reached the C library
    when refreshes replace it (or close() frees it) still verifies on those keys."""
    server = servers(directory(issuer.public_key), cache_control="no-store")
    inside, go_on = threading.Event(), threading.Event()
    original = pp.Verifier.verify

    def held(self: pp.Verifier, *args: object) -> None:
        if threading.current_thread().name == "held":
            inside.set()
            assert go_on.wait(DEADLINE)
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(pp.Verifier, "verify", held)
    outcome: List[str] = []

    def work() -> None:
        try:
            dv.verify(tokens["a"], challenge)
            outcome.append("verified")
        except BaseException as err:  # noqa: BLE001 (reported below)
            outcome.append(repr(err))

    dv = DirectoryVerifier(server.url, min_refresh=0.05)
    try:
        thread = threading.Thread(target=work, name="held")
        thread.start()
        assert inside.wait(DEADLINE)
        if then == "refreshes":
            # The issuer drops key a meanwhile: two refreshes replace the Verifier in use.
            server.set(body=directory(issuer_b.public_key))
            count = server.count()
            wait_for(lambda: server.count() >= count + 2, "two refreshes")
            wait_for(lambda: verifies(dv, tokens["b"], challenge), "key b in use")
        else:
            dv.close()
        go_on.set()
        thread.join(DEADLINE)
        assert outcome == ["verified"]
        if then == "close":
            with pytest.raises(pp.ClosedHandleError):
                dv.verify(tokens["a"], challenge)
        else:
            assert not verifies(dv, tokens["a"], challenge)
    finally:
        go_on.set()
        dv.close()


def test_close_while_verifying(servers: Callable[..., DirectoryServer], issuer: pp.Issuer,
                               tokens: Dict[str, bytes], challenge: bytes) -> None:
    server = servers(directory(issuer.public_key), cache_control="no-store")
    dv = DirectoryVerifier(server.url, min_refresh=0.05)
    outcomes: List[str] = []
    started = threading.Barrier(5)

    def work() -> None:
        started.wait()
        while True:
            try:
                dv.verify(tokens["a"], challenge)
            except pp.ClosedHandleError:
                outcomes.append("closed")
                return
            except BaseException as err:  # noqa: BLE001
                outcomes.append(repr(err))
                return

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.2)
    dv.close()
    for thread in threads:
        thread.join(10)
    assert outcomes == ["closed"] * 4


def test_close_stops_the_requests(servers: Callable[..., DirectoryServer], issuer: pp.Issuer,
                                  tokens: Dict[str, bytes], challenge: bytes) -> None:
    server = servers(directory(issuer.public_key), cache_control="no-store")
    dv = DirectoryVerifier(server.url, min_refresh=0.05)
    thread = dv._thread
    wait_for(lambda: server.count() >= 3, "refreshes running")
    dv.close()
    assert not thread.is_alive()
    count = server.count()
    time.sleep(0.4)
    assert server.count() == count
    assert dv.closed and "closed" in repr(dv)
    with pytest.raises(pp.ClosedHandleError):
        dv.verify(tokens["a"], challenge)
    with pytest.raises(pp.ClosedHandleError):
        dv.verify_authorization(pp.encode_authorization(tokens["a"]), challenge)
    dv.close()  # idempotent
    with pytest.raises(pp.ClosedHandleError):
        with dv:
            pass


def test_close_from_on_error(servers: Callable[..., DirectoryServer], issuer: pp.Issuer) -> None:
    server = servers(directory(issuer.public_key), cache_control="no-store")
    holder: List[DirectoryVerifier] = []
    closed = threading.Event()

    def on_error(error: Exception) -> None:
        holder[0].close()  # from the refresh thread itself: must not deadlock
        closed.set()

    holder.append(DirectoryVerifier(server.url, min_refresh=0.05, on_error=on_error))
    thread = holder[0]._thread
    server.set(status=500)
    assert closed.wait(DEADLINE)
    thread.join(DEADLINE)
    assert not thread.is_alive() and holder[0].closed


def test_a_forgotten_directory_verifier_stops(servers: Callable[..., DirectoryServer],
                                              issuer: pp.Issuer) -> None:
    server = servers(directory(issuer.public_key), cache_control="no-store")
    dv = DirectoryVerifier(server.url, min_refresh=0.05)
    thread = dv._thread
    wait_for(lambda: server.count() >= 2, "refreshes running")
    del dv
    gc.collect()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    count = server.count()
    time.sleep(0.3)
    assert server.count() == count


def test_cannot_be_pickled(servers: Callable[..., DirectoryServer], issuer: pp.Issuer) -> None:
    import pickle
    server = servers(directory(issuer.public_key))
    with DirectoryVerifier(server.url) as dv:
        with pytest.raises(TypeError):
            pickle.dumps(dv)


# ---------------------------------------------------------------------------------------------
# Redeemers kept current


def redeems(redeemer: pp.Redeemer, token: bytes, challenge: bytes) -> bool:
    """Whether the redeemer accepts the token (spending it); False when it fails verification,
    which spends nothing."""
    try:
        redeemer.redeem(token, challenge)
        return True
    except pp.VerificationFailed:
        return False


def refuses_fresh_tokens(redeemer: pp.Redeemer, issuer: pp.Issuer, challenge: bytes) -> bool:
    """Whether a fresh token of ``issuer`` fails verification (one accepted meanwhile is spent,
    and the next probe takes another)."""
    return not redeems(redeemer, make_token(issuer, challenge), challenge)


def test_redeemer_follows_the_directory(servers: Callable[..., DirectoryServer],
                                        issuer: pp.Issuer, issuer_b: pp.Issuer,
                                        challenge: bytes) -> None:
    server = servers(directory(issuer.public_key), cache_control="max-age=0", etag='"a"')
    a1, a2, b1 = (make_token(issuer, challenge), make_token(issuer, challenge),
                  make_token(issuer_b, challenge))
    errors = Errors()
    with DirectoryVerifier(server.url, min_refresh=0.05, on_error=errors) as dv, \
            dv.redeemer("memory:") as redeemer:
        assert isinstance(redeemer, pp.Redeemer)
        redeemer.redeem(a1, challenge)
        assert not redeems(redeemer, b1, challenge)  # b is not listed yet
        # The issuer publishes its next key beside the current one: the same redeemer
        # accepts b's tokens, and a's spent token stays spent.
        server.set(body=directory(issuer.public_key, issuer_b.public_key), etag='"ab"')
        wait_for(lambda: redeems(redeemer, b1, challenge), "b's token redeems")
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(a1, challenge)
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(b1, challenge)
        redeemer.redeem(a2, challenge)
        # ... then drops the old one: a fresh token of a fails verification.
        server.set(body=directory(issuer_b.public_key), etag='"b"')
        wait_for(lambda: refuses_fresh_tokens(redeemer, issuer, challenge), "a is dropped")
        with pytest.raises(pp.VerificationFailed):
            redeemer.redeem(make_token(issuer, challenge), challenge)
        redeemer.redeem(make_token(issuer_b, challenge), challenge)
        with pytest.raises(pp.AlreadySpent):
            redeemer.redeem(b1, challenge)
        # Revalidations (304) change nothing, and nothing failed.
        count = server.count(304)
        wait_for(lambda: server.count(304) >= count + 2, "two revalidations")
        assert refuses_fresh_tokens(redeemer, issuer, challenge)
        redeemer.redeem(make_token(issuer_b, challenge), challenge)
        assert errors.seen == []


def test_redeemers_share_nothing_but_the_keys(servers: Callable[..., DirectoryServer],
                                              issuer: pp.Issuer, issuer_b: pp.Issuer,
                                              challenge: bytes, tmp_path: Path) -> None:
    """Two redeemers of one DirectoryVerifier: each its own store, both updated."""
    server = servers(directory(issuer.public_key), cache_control="max-age=0", etag='"a"')
    token = make_token(issuer, challenge)
    with DirectoryVerifier(server.url, min_refresh=0.05) as dv, \
            dv.redeemer("memory:") as first, \
            dv.redeemer(f"rocksdb:{tmp_path / 'spends'}") as second:
        first.redeem(token, challenge)
        second.redeem(token, challenge)  # another store: not spent there
        server.set(body=directory(issuer_b.public_key), etag='"b"')
        b1, b2 = make_token(issuer_b, challenge), make_token(issuer_b, challenge)
        wait_for(lambda: redeems(first, b1, challenge), "the first redeemer updated")
        wait_for(lambda: redeems(second, b2, challenge), "the second redeemer updated")
        with pytest.raises(pp.InvalidStoreUrl):
            dv.redeemer("nowhere:")
        with pytest.raises(TypeError):
            dv.redeemer(b"memory:")  # type: ignore[arg-type]


def test_a_redeemer_made_during_a_refresh_gets_its_keys(
        servers: Callable[..., DirectoryServer], issuer: pp.Issuer, issuer_b: pp.Issuer,
        challenge: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """A redeemer made from the old keys while a refresh brings new ones is updated by that
    refresh: its creation and registration are one step as far as a refresh goes. With the
    ETag, every later refresh is a 304, so a redeemer that missed the swap would never get
    b's key."""
    server = servers(directory(issuer.public_key), cache_control="max-age=0", etag='"a"')
    made, go_on = threading.Event(), threading.Event()
    original = refresher.Redeemer

    def paused(verifier: pp.Verifier, store_url: str) -> pp.Redeemer:
        redeemer = original(verifier, store_url)
        if threading.current_thread().name == "maker":
            made.set()  # made from the old keys, not yet registered
            assert go_on.wait(DEADLINE)
        return redeemer

    monkeypatch.setattr(refresher, "Redeemer", paused)
    out: List[pp.Redeemer] = []
    with DirectoryVerifier(server.url, min_refresh=0.05) as dv:
        maker = threading.Thread(target=lambda: out.append(dv.redeemer("memory:")),
                                 name="maker")
        maker.start()
        try:
            assert made.wait(DEADLINE)
            server.set(body=directory(issuer_b.public_key), etag='"b"')
            wait_for(lambda: server.count(200) >= 2, "the new body fetched")
            time.sleep(0.2)  # when that refresh would have swapped the keys, had it not waited
        finally:
            go_on.set()
            maker.join(DEADLINE)
        with out[0] as redeemer:
            wait_for(lambda: redeems(redeemer, make_token(issuer_b, challenge), challenge),
                     "the redeemer made during the refresh has b's key")
            assert refuses_fresh_tokens(redeemer, issuer, challenge)
            assert server.count(200) == 2  # one swap only: every later answer a 304


def test_a_failed_swap_is_reported_and_the_others_go_on(
        servers: Callable[..., DirectoryServer], issuer: pp.Issuer, issuer_b: pp.Issuer,
        challenge: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    server = servers(directory(issuer.public_key), cache_control="max-age=0", etag='"a"')
    errors = Errors()
    broken: List[pp.Redeemer] = []
    original = pp.Redeemer.set_keys

    def set_keys(self: pp.Redeemer, verifier: pp.Verifier) -> None:
        if broken and self is broken[0]:
            raise RuntimeError("a redeemer that cannot take keys")
        original(self, verifier)

    monkeypatch.setattr(pp.Redeemer, "set_keys", set_keys)
    with DirectoryVerifier(server.url, min_refresh=0.05, on_error=errors) as dv, \
            dv.redeemer("memory:") as first, dv.redeemer("memory:") as second, \
            dv.redeemer("memory:") as third:
        broken.append(second)
        server.set(body=directory(issuer_b.public_key), etag='"b"')
        for redeemer in (first, third):
            wait_for(lambda: redeems(redeemer, make_token(issuer_b, challenge), challenge),
                     "the other redeemers updated")
        failures = errors.of(RuntimeError)
        assert len(failures) == 1 and "cannot take keys" in str(failures[0])
        # The broken one keeps its keys; the refresh itself counts as a good one.
        assert refuses_fresh_tokens(second, issuer_b, challenge)
        second.redeem(make_token(issuer, challenge), challenge)
        assert verifies(dv, make_token(issuer_b, challenge), challenge)
        assert dv.etag == '"b"' and len(errors.seen) == 1


def test_a_failed_swap_without_on_error_is_logged(
        servers: Callable[..., DirectoryServer], issuer: pp.Issuer, issuer_b: pp.Issuer,
        challenge: bytes, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    server = servers(directory(issuer.public_key), cache_control="max-age=0", etag='"a"')

    def set_keys(self: pp.Redeemer, verifier: pp.Verifier) -> None:
        raise RuntimeError("a redeemer that cannot take keys")

    monkeypatch.setattr(pp.Redeemer, "set_keys", set_keys)
    with caplog.at_level("WARNING", logger="privacypass.refresher"), \
            DirectoryVerifier(server.url, min_refresh=0.05) as dv, \
            dv.redeemer("memory:"):
        server.set(body=directory(issuer_b.public_key), etag='"b"')
        wait_for(lambda: any("into a redeemer" in r.getMessage() for r in caplog.records),
                 "the failed swap logged")
        record = [r for r in caplog.records if "into a redeemer" in r.getMessage()][0]
        assert server.url in record.getMessage() and record.exc_info is not None


def test_redeemers_are_held_weakly(servers: Callable[..., DirectoryServer], issuer: pp.Issuer,
                                   issuer_b: pp.Issuer, challenge: bytes,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A redeemer forgotten by its owner is collected (the DirectoryVerifier does not keep it
    alive), and one closed is dropped without a report."""
    server = servers(directory(issuer.public_key), cache_control="max-age=0", etag='"a"')
    errors = Errors()
    swapped: List[pp.Redeemer] = []
    original = pp.Redeemer.set_keys

    def recording(self: pp.Redeemer, verifier: pp.Verifier) -> None:
        original(self, verifier)
        swapped.append(self)  # a swap that succeeded

    monkeypatch.setattr(pp.Redeemer, "set_keys", recording)
    with DirectoryVerifier(server.url, min_refresh=0.05, on_error=errors) as dv:
        forgotten = dv.redeemer("memory:")
        ref = weakref.ref(forgotten)
        del forgotten
        gc.collect()
        assert ref() is None
        closed = dv.redeemer("memory:")
        closed.close()
        with dv.redeemer("memory:") as kept:
            server.set(body=directory(issuer_b.public_key), etag='"b"')
            wait_for(lambda: redeems(kept, make_token(issuer_b, challenge), challenge),
                     "the live redeemer updated")
            wait_for(lambda: list(dv._redeemers) == [kept], "the closed redeemer dropped")
            assert swapped == [kept]
        assert errors.seen == []
        with pytest.raises(pp.ClosedHandleError):
            closed.redeem(make_token(issuer_b, challenge), challenge)


def test_close_stops_the_updates_not_the_redeemers(
        servers: Callable[..., DirectoryServer], issuer: pp.Issuer, issuer_b: pp.Issuer,
        challenge: bytes) -> None:
    server = servers(directory(issuer.public_key), cache_control="max-age=0", etag='"a"')
    dv = DirectoryVerifier(server.url, min_refresh=0.05)
    redeemer = dv.redeemer("memory:")
    spent = make_token(issuer, challenge)
    redeemer.redeem(spent, challenge)
    dv.close()
    with pytest.raises(pp.ClosedHandleError):
        dv.redeemer("memory:")
    server.set(body=directory(issuer_b.public_key), etag='"b"')
    time.sleep(0.3)  # six refresh intervals: none happens
    # The redeemer is the caller's: open, on the last keys it got, its spends kept.
    assert not redeemer.closed
    redeemer.redeem(make_token(issuer, challenge), challenge)
    with pytest.raises(pp.AlreadySpent):
        redeemer.redeem(spent, challenge)
    assert not redeems(redeemer, make_token(issuer_b, challenge), challenge)
    assert list(dv._redeemers) == []
    redeemer.close()


def test_redeem_from_threads_during_refreshes(servers: Callable[..., DirectoryServer],
                                              issuer: pp.Issuer, issuer_b: pp.Issuer,
                                              challenge: bytes) -> None:
    """8 threads redeem through one refresher-made redeemer while every refresh (each 50 ms, no
    ETag, no-store) swaps new keys into it: each token is accepted exactly once, never
    refused by verification."""
    server = servers(directory(issuer.public_key, issuer_b.public_key), cache_control="no-store")
    failures: List[BaseException] = []
    stop = threading.Event()
    redeemed = [0] * 8
    errors = Errors()
    with DirectoryVerifier(server.url, min_refresh=0.05, on_error=errors) as dv, \
            dv.redeemer("memory:") as redeemer:
        def work(index: int) -> None:
            try:
                while not stop.is_set():
                    token = make_token(issuer if index % 2 else issuer_b, challenge)
                    redeemer.redeem(token, challenge)
                    with pytest.raises(pp.AlreadySpent):
                        redeemer.redeem_authorization(pp.encode_authorization(token), challenge)
                    dv.verify(token, challenge)
                    redeemed[index] += 1
            except BaseException as err:  # noqa: BLE001 (reported below)
                failures.append(err)

        run_threads(work, stop, lambda: server.count() >= 15 or bool(failures), "15 refreshes")
        # Redeemers made meanwhile are updated too.
        with dv.redeemer("memory:") as late:
            late.redeem(make_token(issuer, challenge), challenge)
    assert failures == []
    assert errors.seen == []
    assert all(count > 0 for count in redeemed), redeemed


def test_redeemers_made_from_threads_during_refreshes(
        servers: Callable[..., DirectoryServer], issuer: pp.Issuer, issuer_b: pp.Issuer,
        challenge: bytes) -> None:
    """Redeemers made and dropped from several threads while refreshes swap keys: every one
    verifies, none is left registered once dropped."""
    server = servers(directory(issuer.public_key, issuer_b.public_key), cache_control="no-store")
    failures: List[BaseException] = []
    stop = threading.Event()
    token = make_token(issuer_b, challenge)
    with DirectoryVerifier(server.url, min_refresh=0.05) as dv:
        def work() -> None:
            try:
                while not stop.is_set():
                    with dv.redeemer("memory:") as redeemer:
                        redeemer.redeem(token, challenge)
            except BaseException as err:  # noqa: BLE001 (reported below)
                failures.append(err)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: server.count() >= 10 or bool(failures), "10 refreshes")
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
        gc.collect()
        assert failures == []
        assert list(dv._redeemers) == []


# ---------------------------------------------------------------------------------------------
# privacypassd's own directory (Cache-Control: max-age=300, an ETag, 304 on If-None-Match)


def test_privacypassd_directory(daemon: Daemon) -> None:
    url = daemon.url + PATH
    challenge = pp.encode_challenge("issuer.example")
    errors = Errors()
    # max_refresh caps the daemon's max-age=300, so that the test sees revalidations.
    with DirectoryVerifier(url, min_refresh=0.05, max_refresh=0.1, on_error=errors) as dv:
        etag = dv.etag
        assert etag
        text = json.loads(daemon.get(PATH))["token-keys"][0]["token-key"]
        token_key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        with pp.Client(token_key) as client, client.request(challenge) as pending:
            response = daemon.post("/token-request", pending.token_request,
                                   "application/private-token-request")
            token = pending.finalize(response)
        dv.verify(token, challenge)
        first = dv.last_refresh
        wait_for(lambda: dv.last_refresh > first, "a revalidation")
        assert dv.etag == etag and errors.seen == []
        dv.verify(token, challenge)


# ---------------------------------------------------------------------------------------------
# The README's example


def test_readme_directory_example_runs(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    marker = "<!-- example_directory.py -->"
    assert text.count(marker) == 1, f"{README}: one {marker} block"
    after = text[text.index(marker):]
    match = re.match(r"<!-- example_directory\.py -->\n```python\n(.*?)^```$", after,
                     re.S | re.M)
    assert match, f"{README} has no {marker} line followed by a ```python block"
    example = match.group(1)
    assert example.startswith("import privacypass as pp\n") and "DirectoryVerifier" in example
    assert ".redeemer(" in example
    result = run_script(tmp_path, "example_directory.py", example)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = re.search(r"^```text\n(.*?)^```$", after, re.S | re.M)
    assert shown
    assert result.stdout.splitlines() == shown.group(1).splitlines() == [
        'directory ETag: "1"', "token verified", "token redeemed"]
