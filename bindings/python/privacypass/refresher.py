"""DirectoryVerifier: a Verifier kept current from one issuer's directory URL.

    DirectoryVerifier(url)  fetches the RFC 9578 issuer directory
                (``/.well-known/private-token-issuer-directory``) once, then again in a
                background thread before its HTTP freshness lifetime ends; ``verify`` and
                ``verify_authorization`` use the keys of the last good answer, and
                ``redeemer(store_url)`` makes a Redeemer that each new answer's keys are
                swapped into

Standard library only (``urllib.request``, ``threading``). The directory's freshness comes from
``Cache-Control: max-age`` (less ``Age``), else ``Expires``; ``no-store`` and ``no-cache`` mean
"refresh at ``min_refresh``". Each refresh sends ``If-None-Match`` with the last ``ETag``; a
304 keeps the keys and restarts the clock. A failed refresh (network error, HTTP error, a body
that is no valid directory, a redirect to another origin) keeps the last good keys, is reported
to ``on_error`` and is retried with exponential backoff. Each good answer replaces the key set
wholesale: a key the issuer no longer lists stops verifying.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from datetime import timezone
from email.message import Message
from http.client import HTTPMessage
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import BytesLike, ClosedHandleError, Redeemer, Text, Verifier

_log = logging.getLogger("privacypass.refresher")

# The freshness lifetime assumed when an answer has none (no max-age, no Expires), in seconds,
# before the clamp to [min_refresh, max_refresh].
DEFAULT_LIFETIME = 3600.0
# The largest directory body read; a larger one is an error (a directory is a few KB).
MAX_DIRECTORY_BYTES = 1 << 20
_ACCEPT = "application/private-token-issuer-directory, application/json;q=0.9"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> Tuple[str, str, Optional[int]]:
    """(scheme, host, port) of a URL, lowercased, the scheme's default port filled in."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: never the issuer's
        port = -1
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


class RedirectRefused(urllib.error.HTTPError):
    """A directory fetch was redirected to another origin (scheme, host or port) than the
    DirectoryVerifier's URL: refused, so that the keys of two issuers are never mixed. An
    HTTPError whose ``code`` is the redirect's status."""


class _SameOriginRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects within the origin of ``url`` only; any other raises RedirectRefused."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._origin = _origin(url)

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> Optional[urllib.request.Request]:
        target = urllib.parse.urljoin(req.full_url, newurl)
        if _origin(target) != self._origin:
            raise RedirectRefused(req.full_url, code,
                                  f"redirect to another origin refused: {target}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _header(headers: Message, name: str) -> Optional[str]:
    value = headers.get(name)
    return None if value is None else str(value)


def _lifetime(headers: Message) -> Optional[float]:
    """The freshness lifetime an answer's headers give, in seconds (0: refresh as soon as
    allowed), or None when they give none."""
    lifetime: Optional[float] = None
    directives: Dict[str, str] = {}
    for header in headers.get_all("Cache-Control") or []:
        for item in str(header).split(","):
            name, _, value = item.strip().partition("=")
            directives[name.strip().lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    if "max-age" in directives:
        try:
            lifetime = float(int(directives["max-age"]))
        except ValueError:
            lifetime = 0.0  # RFC 9111 §4.2.1: an invalid max-age is stale
    elif _header(headers, "Expires") is not None:
        try:
            expires = email.utils.parsedate_to_datetime(str(_header(headers, "Expires")))
            date = _header(headers, "Date")
            now = (email.utils.parsedate_to_datetime(date).timestamp() if date is not None
                   else time.time())
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=timezone.utc)
            lifetime = expires.timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            lifetime = 0.0  # RFC 9111 §5.3: an invalid Expires is in the past
    if lifetime is None:
        return None
    try:
        age = float(int((_header(headers, "Age") or "0").strip()))
    except ValueError:
        age = 0.0
    return max(0.0, lifetime - max(0.0, age))


class _Slot:
    """One Verifier and the verify calls using it; closed by the last of them once retired."""

    __slots__ = ("verifier", "users", "retired")

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.users = 0
        self.retired = False


class DirectoryVerifier:
    """A :class:`Verifier` of one issuer's directory URL, refreshed in a background thread.

    ``DirectoryVerifier(url)`` fetches the directory once (raising what the fetch raised: a
    ``urllib.error.URLError``, ``HTTPError``, ``OSError``, or the :class:`PrivacyPassError` of a
    body that is no valid directory) and then refreshes it in a daemon thread until
    :meth:`close` or the end of a ``with`` block. Each refresh is scheduled at the directory's
    freshness lifetime (``Cache-Control: max-age``, else ``Expires``, else DEFAULT_LIFETIME)
    times ``1 - jitter * random()``, clamped to [``min_refresh``, ``max_refresh``] seconds, so
    that the keys are renewed before they expire and a fleet does not refresh in step.

    A failed refresh keeps the last good keys, calls ``on_error(exception)`` from the refresh
    thread (without it, the failure is logged to the ``privacypass.refresher`` logger) and is
    retried after ``min_refresh`` seconds, then twice as long each time, at most the normal
    refresh interval. Redirects are followed within the URL's origin only: one to another
    scheme, host or port raises :class:`RedirectRefused`. ``opener``: an
    ``urllib.request.OpenerDirector`` to fetch with (proxies, TLS context, authentication);
    by default one that refuses such redirects. With an opener of one's own, the answer's
    final URL is checked instead: a body from another origin is refused, never used.

    :meth:`verify` and :meth:`verify_authorization` are :class:`Verifier`'s, on the current
    keys; they may be called from any number of threads during refreshes. A replaced Verifier
    is closed when the last call using it returns.

    :meth:`redeemer` makes a :class:`Redeemer` of the current keys that every later refresh
    bringing new keys updates (:meth:`Redeemer.set_keys`), its spends kept.
    """

    def __init__(self, url: str, *, timeout: float = 10.0, min_refresh: float = 30.0,
                 max_refresh: float = 86400.0, jitter: float = 0.1,
                 on_error: Optional[Callable[[Exception], None]] = None,
                 opener: Optional[urllib.request.OpenerDirector] = None) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be str, not {type(url).__name__}")
        scheme, host, _ = _origin(url)
        if scheme not in _DEFAULT_PORTS or not host:
            raise ValueError(f"url must be an http or https URL with a host, not {url!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        if not 0 < min_refresh <= max_refresh:
            raise ValueError(f"need 0 < min_refresh <= max_refresh, not {min_refresh}, "
                             f"{max_refresh}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, not {jitter}")
        self._url = url
        self._origin = _origin(url)
        self._timeout = float(timeout)
        self._min_refresh = float(min_refresh)
        self._max_refresh = float(max_refresh)
        self._jitter = float(jitter)
        self._on_error = on_error
        self._opener = opener if opener is not None else \
            urllib.request.build_opener(_SameOriginRedirectHandler(url))
        self._lock = threading.Lock()
        # Held while a new slot is installed and its keys applied to the redeemers, and while
        # a redeemer is made and registered: a redeemer is made either before a refresh's
        # keys are installed (and is then updated with them) or after (and made of them).
        # Taken before _lock, never while holding it. (A redeemer() opening a slow store
        # delays the next swap of keys by as long, never a verify call.)
        self._keys_lock = threading.Lock()
        # The redeemers handed out by redeemer(), held weakly: one that is forgotten is
        # dropped here, and one that is closed is dropped at the next refresh.
        self._redeemers: "weakref.WeakSet[Redeemer]" = weakref.WeakSet()
        self._stop = threading.Event()
        self._slot: Optional[_Slot] = None
        self._etag: Optional[str] = None
        self._lifetime: Optional[float] = None
        self._last_refresh = 0.0
        self._closed = False

        self._refresh()  # the first fetch: its failure is the constructor's
        # The thread holds the object weakly, so that a forgotten DirectoryVerifier is
        # collected (and closed) like a forgotten handle.
        self._thread = threading.Thread(
            target=DirectoryVerifier._run, args=(weakref.ref(self), self._stop),
            name=f"privacypass-directory {url}", daemon=True)
        self._thread.start()

    # -- properties

    @property
    def url(self) -> str:
        """The directory URL this verifier is bound to."""
        return self._url

    @property
    def etag(self) -> Optional[str]:
        """The ``ETag`` of the directory currently in use (None: the issuer sent none)."""
        with self._lock:
            return self._etag

    @property
    def last_refresh(self) -> float:
        """When the directory was last fetched successfully (a 200 or a 304), as ``time.time()``."""
        with self._lock:
            return self._last_refresh

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: verify then raises ClosedHandleError."""
        return self._closed

    # -- verification

    def _enter(self) -> _Slot:
        with self._lock:
            slot = self._slot
            if slot is None:
                raise ClosedHandleError(f"{type(self).__name__} is closed")
            slot.users += 1
            return slot

    def _leave(self, slot: _Slot) -> None:
        with self._lock:
            slot.users -= 1
            free = slot.retired and slot.users == 0
        if free:
            slot.verifier.close()

    def verify(self, token: BytesLike, challenge: Optional[BytesLike] = None) -> None:
        """:meth:`Verifier.verify` with the current keys: raises VerificationFailed for a token
        of no key of the last good directory, ClosedHandleError after :meth:`close`."""
        slot = self._enter()
        try:
            slot.verifier.verify(token, challenge)
        finally:
            self._leave(slot)

    def verify_authorization(self, authorization: Text,
                             challenge: Optional[BytesLike] = None) -> None:
        """:meth:`Verifier.verify_authorization` with the current keys."""
        slot = self._enter()
        try:
            slot.verifier.verify_authorization(authorization, challenge)
        finally:
            self._leave(slot)

    # -- redemption

    def redeemer(self, store_url: str) -> Redeemer:
        """A :class:`Redeemer` verifying with the current keys and recording spends in the
        store ``store_url`` names (the URLs :class:`Redeemer` takes), kept current: each
        refresh that brings new keys swaps them into it (:meth:`Redeemer.set_keys`), all at
        once, its spends kept, so a token spent before stays spent whichever keys verify it.
        A redeemer made while a refresh is installing its keys gets those keys, never the ones
        they replace.

        The caller owns the redeemer: close it (or let it be garbage-collected) when done; this
        DirectoryVerifier holds it weakly and stops updating it then. :meth:`close` stops the
        updates but does not close the redeemer, which keeps verifying with the last keys it
        got. A failure to update one redeemer is reported as a failed refresh is (``on_error``,
        else the ``privacypass.refresher`` logger) and the others are updated all the same.

        Raises ClosedHandleError after :meth:`close`, InvalidStoreUrl or StoreUnavailable as
        :class:`Redeemer` does."""
        with self._keys_lock:
            slot = self._enter()
            try:
                redeemer = Redeemer(slot.verifier, store_url)
            finally:
                self._leave(slot)
            with self._lock:
                if not self._closed:
                    self._redeemers.add(redeemer)
        return redeemer

    def _update_redeemers(self, slot: _Slot) -> List[Exception]:
        """Swaps the keys of ``slot`` (borrowed by the caller) into every live redeemer, the
        caller holding _keys_lock; the failures, for the caller to report once it holds no
        lock. A closed redeemer is dropped; closing this DirectoryVerifier stops the loop."""
        failures: List[Exception] = []
        with self._lock:
            redeemers = list(self._redeemers)
        for redeemer in redeemers:
            if self._closed:
                break
            try:
                redeemer.set_keys(slot.verifier)
            except ClosedHandleError as error:
                if redeemer.closed:  # closed by its owner: dropped, not updated any more
                    with self._lock:
                        self._redeemers.discard(redeemer)
                else:
                    failures.append(error)
            except Exception as error:
                failures.append(error)
        return failures

    # -- fetching

    def _fetch(self) -> Tuple[Optional[Verifier], Message]:
        """One conditional GET: (a Verifier of the body, headers) for a 200, (None, headers)
        for a 304. Raises for anything else."""
        headers = {"Accept": _ACCEPT}
        etag = self.etag
        if etag is not None:
            headers["If-None-Match"] = etag
        request = urllib.request.Request(self._url, headers=headers, method="GET")
        try:
            response = self._opener.open(request, timeout=self._timeout)
        except urllib.error.HTTPError as err:
            try:
                if err.code == 304 and etag is not None:
                    return None, err.headers
                raise
            finally:
                err.close()
        with response:
            final = response.geturl()
            if _origin(final) != self._origin:
                raise RedirectRefused(self._url, 0,
                                      f"answer from another origin refused: {final}",
                                      response.headers, None)
            status = response.status
            if status != 200:
                raise urllib.error.HTTPError(final, status,
                                             f"unexpected status {status} for a directory",
                                             response.headers, None)
            body = response.read(MAX_DIRECTORY_BYTES + 1)
            if len(body) > MAX_DIRECTORY_BYTES:
                raise ValueError(f"directory larger than {MAX_DIRECTORY_BYTES} bytes")
            return Verifier.from_directory(body), response.headers

    def _refresh(self) -> None:
        """Fetches the directory and installs its keys (or, for a 304, keeps them), then swaps
        new keys into the redeemers handed out; their failures are reported, not raised."""
        verifier, headers = self._fetch()
        lifetime = _lifetime(headers)
        retired: Optional[_Slot] = None
        installed: Optional[_Slot] = None
        failures: List[Exception] = []
        with contextlib.ExitStack() as new_keys:
            if verifier is not None:  # a 304 changes no keys: it waits for no redeemer()
                new_keys.enter_context(self._keys_lock)
            with self._lock:
                if self._closed:
                    closed = True
                else:
                    closed = False
                    etag = _header(headers, "ETag")
                    if verifier is not None:
                        installed = _Slot(verifier)
                        installed.users += 1  # borrowed until the redeemers have its keys
                        retired, self._slot = self._slot, installed
                        self._etag = etag
                    elif etag is not None:
                        self._etag = etag
                    if verifier is not None or lifetime is not None:
                        self._lifetime = lifetime
                    self._last_refresh = time.time()
                    if retired is not None:
                        retired.retired = True
                        if retired.users:
                            retired = None  # its last verify call closes it
            if installed is not None:
                try:
                    failures = self._update_redeemers(installed)
                finally:
                    self._leave(installed)  # frees it if close() retired it meanwhile
        if closed and verifier is not None:
            verifier.close()
        if retired is not None:
            retired.verifier.close()
        for failure in failures:
            self._report(failure, updating=True)

    def _interval(self) -> float:
        """The normal refresh interval, without jitter, clamped."""
        lifetime = self._lifetime if self._lifetime is not None else DEFAULT_LIFETIME
        return min(self._max_refresh, max(self._min_refresh, lifetime))

    def _next_delay(self) -> float:
        lifetime = self._lifetime if self._lifetime is not None else DEFAULT_LIFETIME
        delay = lifetime * (1.0 - self._jitter * random.random())
        return min(self._max_refresh, max(self._min_refresh, delay))

    def _report(self, error: Exception, updating: bool = False) -> None:
        if self._on_error is None:
            if updating:
                _log.warning("swapping the keys of the issuer directory %s into a redeemer "
                             "failed; it keeps its previous keys", self._url, exc_info=error)
            else:
                _log.warning("refreshing the issuer directory %s failed; keeping the last "
                             "good keys", self._url, exc_info=error)
            return
        try:
            self._on_error(error)
        except Exception:
            _log.exception("on_error raised while reporting a failed refresh of %s", self._url)

    @staticmethod
    def _run(ref: "weakref.ReferenceType[DirectoryVerifier]", stop: threading.Event) -> None:
        failures = 0
        self = ref()
        if self is None:
            return
        delay = self._next_delay()
        del self
        while not stop.wait(delay):
            self = ref()
            if self is None:
                return
            try:
                self._refresh()
            except Exception as error:
                if stop.is_set():
                    return
                self._report(error)
                delay = min(self._interval(), self._min_refresh * 2.0 ** min(failures, 60))
                failures += 1
            else:
                failures = 0
                delay = self._next_delay()
            del self

    # -- lifetime

    def close(self) -> None:
        """Stops the refresh thread (waiting for a fetch in progress, at most ``timeout``
        seconds) and frees the keys once no verify call uses them. Idempotent. The redeemers
        :meth:`redeemer` made are not closed (the caller owns them): they keep the last keys
        they got, and are not updated any more."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._redeemers.clear()
            slot, self._slot = self._slot, None
            if slot is not None:
                slot.retired = True
                if slot.users:
                    slot = None  # its last verify call closes it
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._timeout + 1.0)
        if slot is not None:
            slot.verifier.close()

    def __enter__(self) -> "DirectoryVerifier":
        if self._closed:
            raise ClosedHandleError(f"{type(self).__name__} is closed")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_lock", None) is not None:
                self.close()
        except Exception:  # interpreter shutdown: nothing sensible left to do
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<privacypass.DirectoryVerifier {self._url} {state}>"

    def __reduce__(self) -> Any:
        raise TypeError("DirectoryVerifier holds a C handle and a thread and cannot be pickled")


__all__ = ["DirectoryVerifier", "RedirectRefused", "DEFAULT_LIFETIME", "MAX_DIRECTORY_BYTES"]
