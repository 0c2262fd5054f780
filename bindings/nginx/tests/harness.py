"""A real nginx (2 workers, the privacypass module loaded) and a real privacypassd on 127.0.0.1,
each in its own temporary directory, plus a client that mints tokens: shared by the tests
(conftest.py) and the benchmark (bench_nginx.py).

Environment: NGINX_BINARY (default /usr/sbin/nginx), PRIVACYPASS_NGINX_MODULE (the built .so),
PRIVACYPASSD (the daemon binary).
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import privacypass as pp

HOME_RELEASE = Path.home() / ".cache" / "privacypass" / "target" / "release"


def binary(env: str, default: Path) -> Path:
    path = Path(os.environ.get(env) or default)
    if not os.access(path, os.R_OK):
        raise RuntimeError(f"{path} not found: set {env} (make test-nginx does)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def wait_for_port(port: int, process: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{read(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} is not listening on {port}:\n{read(log)}")


def read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM,
                 timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------------------------------
# privacypassd


KEY_TYPES = {1: "voprf-p384", 2: "blind-rsa-2048", 5: "voprf-ristretto255"}


class Daemon:
    """privacypassd serve on 127.0.0.1:PORT with RocksDB in DIR/data and generated keys: an
    RSA key (type 2) and, with voprf, a type 1 and a type 5 key beside it."""

    def __init__(self, directory: Path, voprf: bool = True) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "privacypassd.log"
        daemon = binary("PRIVACYPASSD", HOME_RELEASE / "privacypassd")
        env = dict(os.environ, PRIVACYPASS_LOG="warn")
        keys_dir = directory / "data" / "keys"
        if voprf and not keys_dir.exists():
            for token_type in (2, 1, 5):
                subprocess.run([str(daemon), "keys", "generate", "--type", KEY_TYPES[token_type],
                                "--keys-dir", str(keys_dir)], check=True, capture_output=True,
                               env=env)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(daemon), "serve", "--listen", f"127.0.0.1:{self.port}",
                 "--data-dir", str(directory / "data"), "--generate-key-if-missing", "true"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        try:
            wait_for_port(self.port, self.process, "privacypassd", self.log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop_process(self.process)

    def directory(self) -> bytes:
        return http_request(self.port, "GET", "/.well-known/private-token-issuer-directory")[2]

    def token_keys(self, token_type: Optional[int] = None) -> List[Tuple[int, bytes]]:
        """(token type, Token Key Encoding) of the directory's keys, in its order."""
        keys = json.loads(self.directory())["token-keys"]
        return [(k["token-type"], b64url_decode(k["token-key"])) for k in keys
                if token_type is None or k["token-type"] == token_type]

    def key_ids(self, token_type: int = 2) -> List[str]:
        """Hex token_key_ids of the directory's keys of a type (SHA-256 of the key)."""
        return [hashlib.sha256(key).hexdigest() for _, key in self.token_keys(token_type)]

    def private_key_pem(self) -> Path:
        """The RSA key's file (named by its token_key_id)."""
        return self.dir / "data" / "keys" / f"{self.key_ids(2)[0]}.pem"

    def redeem_calls(self) -> Dict[str, int]:
        """privacypass_calls_total{op="redeem"} of /metrics, by code."""
        text = http_request(self.port, "GET", "/metrics")[2].decode()
        return {m.group(1): int(float(m.group(2))) for m in re.finditer(
            r'^privacypass_calls_total\{op="redeem",code="([^"]+)"\} (\S+)$', text, re.M)}


# ---------------------------------------------------------------------------------------------
# nginx

PROTECTED = ("protected", "fixed", "pem", "url", "url2", "short", "down", "malformed",
             "unsupported", "mixed", "mixed-fixed")

CONFIG = """\
load_module {module};
{user}
worker_processes 2;
daemon off;
master_process on;
pid {prefix}/logs/nginx.pid;
error_log {prefix}/logs/error.log info;

events {{
    worker_connections 4096;
}}

http {{
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;

    log_format privacypass '$pid $status $privacypass_status '
                           '$privacypass_token_key_id $privacypass_token_type "$request"';
    access_log {prefix}/logs/access.log privacypass{access_buffer};

    {secret}

    upstream privacypassd {{
        server 127.0.0.1:{daemon_port};
        keepalive 32;
    }}

    server {{
        # reuseport: one listening socket per worker, so that connections spread over both
        listen 127.0.0.1:{port} reuseport;
        # HTTP/2 without TLS (prior knowledge), for the multiplexed-streams test
        listen 127.0.0.1:{h2_port} http2 reuseport;
        root {prefix}/html;

        privacypass_issuer_name {issuer};
        privacypass_keys {prefix}/conf/directory.json;
        privacypass_redeem_url /_privacypass/redeem;
        privacypass_max_age 600;

        location = /_privacypass/redeem {{
            internal;
            proxy_pass http://privacypassd/api/redeem;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 2s;
            proxy_read_timeout 10s;
        }}

        # the daemon is not there: fail closed
        location = /_privacypass/nowhere {{
            internal;
            proxy_pass http://127.0.0.1:{closed_port}/api/redeem;
            proxy_connect_timeout 2s;
        }}

        # redeemers that refuse every token as privacypassd refuses a malformed one (-32602)
        # or one of a type it does not serve (-32022)
        location = /_privacypass/malformed {{
            internal;
            default_type application/json;
            return 400 '{{"jsonrpc":"2.0","id":1,"error":{{"code":-32602,"message":"invalid params"}}}}';
        }}

        location = /_privacypass/unsupported {{
            internal;
            default_type application/json;
            return 400 '{{"jsonrpc":"2.0","id":1,"error":{{"code":-32022,"message":"unsupported"}}}}';
        }}

        location /protected/ {{
            privacypass on;
        }}

        location /fixed/ {{
            privacypass on;
            privacypass_redemption_context none;
            privacypass_origin_info {issuer};
        }}

        location /pem/ {{
            privacypass on;
            privacypass_keys {prefix}/conf/keys.pem;
        }}

        # the shorthand: the module adds the internal proxy location itself (once per server)
        location /url/ {{
            privacypass on;
            privacypass_redeem_url http://127.0.0.1:{daemon_port}/api/redeem;
        }}

        location /url2/ {{
            privacypass on;
            privacypass_redeem_url http://127.0.0.1:{daemon_port}/api/redeem;
        }}

        # 2-second windows: the tests watch challenges age
        location /short/ {{
            privacypass on;
            privacypass_max_age 2s;
        }}

        location /down/ {{
            privacypass on;
            privacypass_redeem_url /_privacypass/nowhere;
        }}

        location /malformed/ {{
            privacypass on;
            privacypass_redeem_url /_privacypass/malformed;
        }}

        location /unsupported/ {{
            privacypass on;
            privacypass_redeem_url /_privacypass/unsupported;
        }}

        # the privately verifiable types beside Blind RSA: one challenge per key of the
        # directory (the daemon verifies types 1 and 5 when it spends them)
        location /mixed/ {{
            privacypass on;
            privacypass_token_types 2 1 5;
        }}

        location /mixed-fixed/ {{
            privacypass on;
            privacypass_token_types voprf-ristretto255 voprf-p384;
            privacypass_redemption_context none;
        }}

        location / {{
        }}
    }}
}}
"""


class Nginx:
    """/usr/sbin/nginx -p PREFIX -c conf/nginx.conf, in the foreground with its master and 2
    workers; stopped with SIGQUIT (then SIGKILL) by stop()."""

    def __init__(self, prefix: Path, daemon: Daemon, *, issuer: str = "127.0.0.1",
                 secret: bool = True, access_buffer: bool = False,
                 wrapper: Tuple[str, ...] = ()) -> None:
        self.prefix = prefix
        self.daemon = daemon
        self.issuer = issuer
        self.port = free_port()
        self.h2_port = free_port()
        self.nginx = binary("NGINX_BINARY", Path("/usr/sbin/nginx"))
        module = binary("PRIVACYPASS_NGINX_MODULE", Path("ngx_http_privacypass_module.so"))
        for sub in ("conf", "logs", "tmp", *(f"html/{p}" for p in PROTECTED)):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        (prefix / "conf" / "directory.json").write_bytes(daemon.directory())
        # the daemon's key as a plain rsaEncryption PEM, as `openssl pkey -pubout` writes it
        pem = subprocess.run(["openssl", "pkey", "-in", str(daemon.private_key_pem()), "-pubout"],
                             check=True, capture_output=True).stdout
        (prefix / "conf" / "keys.pem").write_bytes(pem)
        (prefix / "conf" / "context.secret").write_bytes(os.urandom(32))
        (prefix / "html" / "index.html").write_text("open\n")
        for sub in PROTECTED:
            (prefix / "html" / sub / "index.html").write_text(f"{sub}\n")
        secret_line = (f"privacypass_context_secret {prefix}/conf/context.secret;" if secret
                       else "# privacypass_context_secret: random per start")
        config = CONFIG
        if wrapper:
            # under a tool such as valgrind: one process, no master
            config = config.replace("master_process on;", "master_process off;")
            config = config.replace("worker_processes 2;", "worker_processes 1;")
        self.wrapper = wrapper
        (prefix / "conf" / "nginx.conf").write_text(config.format(
            module=module, prefix=prefix, port=self.port, h2_port=self.h2_port,
            daemon_port=daemon.port,
            closed_port=free_port(), issuer=issuer, secret=secret_line,
            user="user root;" if os.geteuid() == 0 else "",
            access_buffer=" buffer=64k flush=1s" if access_buffer else ""))
        self.error_log = prefix / "logs" / "error.log"
        self.access_log = prefix / "logs" / "access.log"
        self.stderr = prefix / "logs" / "stderr.log"
        with open(self.stderr, "wb") as err:
            self.process = subprocess.Popen([*wrapper, *self.command()],
                                            stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            wait_for_port(self.port, self.process, "nginx", self.error_log)
            if not wrapper:
                self.wait_for_workers(2)
        except BaseException:
            self.stop()
            raise

    def command(self, *extra: str) -> List[str]:
        return [str(self.nginx), "-p", str(self.prefix), "-c", "conf/nginx.conf",
                "-e", str(self.error_log), *extra]

    def worker_pids(self) -> List[int]:
        """The master's children that are serving workers (not shutting down), from /proc."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if (ppid == self.process.pid and "worker process" in cmdline
                    and "shutting down" not in cmdline):
                pids.append(int(entry.name))
        return sorted(pids)

    def wait_for_workers(self, count: int, exclude: Tuple[int, ...] = ()) -> List[int]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pids = [p for p in self.worker_pids() if p not in exclude]
            if len(pids) == count:
                return pids
            time.sleep(0.05)
        raise RuntimeError(f"nginx has not {count} new workers:\n{read(self.error_log)}")

    def reload(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.command("-s", "reload"), capture_output=True, text=True)

    def stop(self) -> int:
        stop_process(self.process, signal.SIGQUIT, timeout=60 if self.wrapper else 15)
        return self.process.returncode

    def get(self, path: str, authorization: Optional[str] = None,
            headers: Optional[List[Tuple[str, str]]] = None) -> Tuple[int, Dict[str, str], bytes]:
        all_headers = list(headers or [])
        if authorization is not None:
            all_headers.append(("Authorization", authorization))
        return http_request(self.port, "GET", path, all_headers)

    def challenge(self, path: str = "/protected/") -> Tuple[bytes, List[bytes], str]:
        """(TokenChallenge, token keys, raw header) from the 401 of a request without token."""
        status, headers, _ = self.get(path)
        assert status == 401, status
        return parse_www_authenticate(headers["www-authenticate"])


def http_request(port: int, method: str, path: str,
                 headers: Optional[List[Tuple[str, str]]] = None,
                 body: Optional[bytes] = None) -> Tuple[int, Dict[str, str], bytes]:
    """One request on a fresh connection; headers may repeat. (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers or []:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        answer = {k.lower(): v for k, v in response.getheaders()}
        return response.status, answer, response.read()
    finally:
        conn.close()


def parse_challenges(value: str) -> List[Tuple[bytes, bytes]]:
    """(TokenChallenge, token-key) of each PrivateToken challenge of a WWW-Authenticate value."""
    pairs = re.findall(r'PrivateToken challenge="([^"]+)", token-key="([^"]+)"', value)
    assert pairs and len(pairs) == value.count("PrivateToken"), value
    return [(b64url_decode(c), b64url_decode(k)) for c, k in pairs]


def voprf_client(token_type: int, public_key: bytes) -> "pp.Client":
    """A client of a type 1 or 5 key: the binding's Client.voprf, or, where the installed
    binding predates it, the same from the library's own pp_client_new_voprf."""
    if hasattr(pp.Client, "voprf"):
        return pp.Client.voprf(token_type, public_key)
    from privacypass import _native
    out = _native.ClientPtr()
    rc = _native.lib.pp_client_new_voprf(token_type, public_key, len(public_key),
                                         ctypes.byref(out))
    assert rc == 0, rc
    return pp.Client._adopt(out)


def parse_www_authenticate(value: str) -> Tuple[bytes, List[bytes], str]:
    challenges = re.findall(r'challenge="([^"]+)"', value)
    keys = re.findall(r'token-key="([^"]+)"', value)
    assert challenges and len(challenges) == len(keys), value
    assert len(set(challenges)) == 1, value
    return b64url_decode(challenges[0]), [b64url_decode(k) for k in keys], value


def decode_challenge(challenge: bytes) -> Dict[str, object]:
    """RFC 9577 TokenChallenge fields."""
    token_type = int.from_bytes(challenge[0:2], "big")
    n = int.from_bytes(challenge[2:4], "big")
    issuer = challenge[4:4 + n].decode()
    i = 4 + n
    m = challenge[i]
    context = challenge[i + 1:i + 1 + m]
    i += 1 + m
    k = int.from_bytes(challenge[i:i + 2], "big")
    origin = challenge[i + 2:i + 2 + k].decode()
    assert i + 2 + k == len(challenge)
    return {"token_type": token_type, "issuer": issuer, "context": context, "origin": origin}


class Minter:
    """A client of the daemon: blinds locally (the Python binding), has the daemon sign over
    RFC 9578 POST /token-request, finalizes locally."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=30)
            self._local.conn = conn
        return conn

    def token(self, challenge: bytes, token_key: bytes) -> bytes:
        """A token for the challenge from the daemon's key token_key, of the challenge's
        token type (2: Blind RSA; 1, 5: VOPRF)."""
        token_type = int.from_bytes(challenge[:2], "big")
        client = pp.Client(token_key) if token_type == 2 else voprf_client(token_type, token_key)
        with client, client.request(challenge) as pending:
            for attempt in range(2):
                conn = self._conn()
                try:
                    conn.request("POST", "/token-request", body=pending.token_request,
                                 headers={"Content-Type": "application/private-token-request"})
                    response = conn.getresponse()
                    body = response.read()
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    self._local.conn = None
                    if attempt:
                        raise
            assert response.status == 200, (response.status, body)
            return pending.finalize(body)

    def authorization(self, challenge: bytes, token_key: bytes) -> str:
        return pp.encode_authorization(self.token(challenge, token_key))

    def many(self, challenge: bytes, token_key: bytes, count: int, threads: int = 4) -> List[str]:
        out: "queue.Queue[str]" = queue.Queue()
        errors: List[BaseException] = []

        def work(n: int) -> None:
            try:
                for _ in range(n):
                    out.put(self.authorization(challenge, token_key))
            except BaseException as err:  # reported below
                errors.append(err)

        per = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
        workers = [threading.Thread(target=work, args=(n,)) for n in per]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if errors:
            raise errors[0]
        return [out.get() for _ in range(count)]
