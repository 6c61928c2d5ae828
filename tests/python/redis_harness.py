"""A real ``redis-server`` for the Python tests (imported as a plain module;
the twin of tests/support/redis_server.rs).

``RedisServer(*args)`` starts one on a free loopback port without
persistence (``--port P --bind 127.0.0.1 --save "" --appendonly no
--daemonize no --dir <its temp dir>``, then ``args``: later options win) and
waits until it answers PING. ``stop()`` (also on ``with`` exit, and for any
server still running when the interpreter exits) kills and reaps it and
removes its directory. Tests take the ``redis_server`` fixture (conftest.py)
or ``redis_server_factory`` for extra options.

With ``--requirepass PW`` among ``args`` the harness's own connections
(probes, ``command``, SHUTDOWN) AUTH with it. ``RedisServer(*args,
tls=True)`` also serves TLS on a second free port (``tls_url``), with a
certificate for 127.0.0.1 and localhost signed by a CA of its own
(``ca_file``) that the ``openssl`` CLI makes; probes stay on the plain port.

A missing binary raises ``RedisServerMissing`` with the install hint
(``apt-get install redis-server``); ``start_for_test`` turns that into
``pytest.fail`` (a failure, never a skip). The server's stdout and stderr go
to ``redis.log`` in its directory; errors about a server end with its tail.
No ``redis`` package: ``command`` speaks RESP over a plain socket.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import List, Optional, Set, Union

BINARY = "redis-server"
INSTALL_HINT = (
    "the tests need a real `redis-server` on PATH: install it with "
    "`apt-get install redis-server` (Debian/Ubuntu; prefix `sudo` when not root)"
)
# Startup limit; also how long a restart waits for its port and a SHUTDOWN
# for the process to exit.
TIMEOUT = 10.0
# Fresh ports tried when a start finds its port taken between our probe and
# redis's bind.
PORT_ATTEMPTS = 5
# A readiness probe's limit (connect, PING, INFO): short, so that a port held
# by something that accepts but never answers cannot stall the start.
PROBE = 0.5
LOG = "redis.log"

_counter = itertools.count()
_live: Set["RedisServer"] = set()


class RedisServerError(RuntimeError):
    """The server could not be started or reached."""


class RedisServerMissing(RedisServerError):
    """No ``redis-server`` binary on PATH."""


class RedisReplyError(RedisServerError):
    """The server answered a command with an error (``-ERR ...``)."""


class _PortTaken(Exception):
    pass


class RedisServer:
    """A running ``redis-server`` owned by the test; see the module docs."""

    def __init__(self, *args: str, tls: bool = False) -> None:
        self.args: List[str] = list(args)
        self.password: Optional[str] = None
        if "--requirepass" in self.args[:-1]:
            self.password = self.args[self.args.index("--requirepass") + 1]
        self.port = 0
        self.tls_port: Optional[int] = None
        self.proc: Optional[subprocess.Popen] = None
        self.dir = tempfile.mkdtemp(prefix=f"taskmanager-redis-{os.getpid()}-{next(_counter)}-{time.time_ns()}-")
        _live.add(self)
        try:
            if tls:
                _make_certificates(self.dir)
            for _ in range(PORT_ATTEMPTS):
                self.port = _free_port()
                if tls:
                    self.tls_port = _free_port()
                try:
                    self._launch()
                    return
                except _PortTaken:
                    pass
            raise self._error(f"no free port after {PORT_ATTEMPTS} attempts")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def tls_url(self) -> str:
        """``rediss://127.0.0.1:TLS_PORT/0`` (a server started with ``tls=True``)."""
        assert self.tls_port is not None, "a server started with tls=True"
        return f"rediss://127.0.0.1:{self.tls_port}/0"

    @property
    def ca_file(self) -> str:
        """The PEM file of the CA that signed the TLS certificate."""
        assert self.tls_port is not None, "a server started with tls=True"
        return os.path.join(self.dir, CA_FILE)

    @property
    def pid(self) -> Optional[int]:
        """The process id while a server process runs (None after ``kill``)."""
        return self.proc.pid if self.proc is not None else None

    def restart(self) -> None:
        """SHUTDOWN (SIGKILL after 10 s; nothing if already killed), then
        start again on the same port with the same options and directory,
        so an AOF survives. Waits up to 10 s for the port to come free."""
        self._shutdown()
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                self._launch()
                return
            except _PortTaken:
                if time.monotonic() >= deadline:
                    raise self._error("restart: the port stayed taken for 10 s") from None
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL and reap the server (for fault tests); ``restart`` brings
        it back on the same port."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def stop(self) -> None:
        """Kill and reap the server and remove its directory (idempotent)."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
        _live.discard(self)

    def __enter__(self) -> "RedisServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def command(self, *args: Union[str, bytes, int], timeout: float = TIMEOUT) -> str:
        """Sends one RESP command over a fresh connection; returns the reply
        as plain text, like the Rust harness:

        * ``+OK`` -> ``"OK"``; ``:42`` -> ``"42"``; ``$5 hello`` -> ``"hello"``
        * nil (``$-1``, ``*-1``) -> ``"(nil)"``
        * an array -> its elements, each followed by ``"\\n"`` (nested arrays
          flattened): ``CONFIG GET save`` -> ``"save\\n\\n"``
        * ``-ERR ...`` -> raises ``RedisReplyError``.

        ``timeout`` (seconds) bounds each connect, send and receive.
        """
        try:
            with self._connect(timeout) as sock:
                sock.sendall(_encode(args))
                with sock.makefile("rb") as reader:
                    out: List[str] = []
                    _read_reply(reader, out)
                    return "".join(out)
        except RedisReplyError as e:
            raise RedisReplyError(f"redis-server on port {self.port} answered {args!r} with: -{e}") from None
        except OSError as e:
            raise self._error(f"{args!r}: {e}") from e

    def log(self) -> str:
        """The server's stdout and stderr so far (all its runs)."""
        try:
            with open(os.path.join(self.dir, LOG), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _connect(self, timeout: float = TIMEOUT) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=PROBE)
        sock.settimeout(timeout)
        if self.password is not None:
            try:
                sock.sendall(_encode(("AUTH", self.password)))
                # One line ("+OK" or "-ERR ..."): the server sends nothing
                # more before our command.
                reply = b""
                while not reply.endswith(b"\n"):
                    chunk = sock.recv(256)
                    if not chunk:
                        raise ConnectionError("connection closed before AUTH's reply")
                    reply += chunk
            except OSError:
                sock.close()
                raise
            if not reply.startswith(b"+OK"):
                sock.close()
                raise ConnectionError(f"AUTH refused: {reply!r}")
        return sock

    def _launch(self) -> None:
        """Spawn on ``self.port`` and wait for PING; ``_PortTaken`` if the
        bind failed with "Address already in use"."""
        log_path = os.path.join(self.dir, LOG)
        argv = [BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--daemonize", "no", "--dir", self.dir]
        if self.tls_port is not None:
            argv += ["--tls-port", str(self.tls_port), "--tls-cert-file", SERVER_CERT, "--tls-key-file", SERVER_KEY]
            argv += ["--tls-ca-cert-file", CA_FILE, "--tls-auth-clients", "no"]
        argv += self.args
        with open(log_path, "ab") as log:
            start = log.tell()
            try:
                self.proc = subprocess.Popen(
                    argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            except FileNotFoundError as e:
                raise RedisServerMissing(f"`{BINARY}` not found ({e}); {INSTALL_HINT}") from None
        deadline = time.monotonic() + TIMEOUT
        while True:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                if b"Address already in use" in _read_from(log_path, start):
                    raise _PortTaken()
                raise self._error(f"redis-server exited during startup (exit status {code})")
            if time.monotonic() >= deadline:
                self.kill()
                raise self._error("redis-server did not answer PING within 10 s")
            if self._answers_ping():
                return
            time.sleep(0.02)

    def _answers_ping(self) -> bool:
        """Inline PING gets +PONG from *our* process (INFO's process_id
        matches: not another server that won the port)."""
        try:
            with self._connect(PROBE) as sock:
                sock.sendall(b"PING\r\n")
                with sock.makefile("rb") as reader:
                    if not reader.readline().startswith(b"+PONG"):
                        return False
            info = self.command("INFO", "server", timeout=PROBE)
        except (OSError, RedisServerError):
            return False
        return f"process_id:{self.pid}" in info.splitlines()

    def _shutdown(self) -> None:
        proc = self.proc
        if proc is None:
            return
        try:
            with self._connect() as sock:
                sock.sendall(_encode(("SHUTDOWN",)))
                sock.recv(256)  # the server closes the connection instead of replying
        except OSError:
            pass
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def _error(self, msg: str) -> RedisServerError:
        tail = "\n".join(self.log().splitlines()[-20:])
        where = os.path.join(self.dir, LOG)
        return RedisServerError(f"redis-server on port {self.port}: {msg}\n--- last lines of {where} ---\n{tail}")


def start_for_test(*args: str, tls: bool = False) -> RedisServer:
    """``RedisServer(*args, tls=tls)``, failing the current test (never
    skipping it) with the install hint when the binary is missing."""
    import pytest

    try:
        return RedisServer(*args, tls=tls)
    except RedisServerMissing as e:
        missing = str(e)
    pytest.fail(missing, pytrace=False)  # outside the except: no chained traceback


@atexit.register
def _stop_all() -> None:
    """A net for servers a test forgot: none outlives the interpreter."""
    for server in list(_live):
        server.stop()


CA_FILE = "ca.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server.key"


def _make_certificates(directory: str) -> None:
    """A CA (ca.pem, ca.key) and a server certificate it signed for
    127.0.0.1 and localhost (server.pem, server.key): P-256 keys, two days,
    by the ``openssl`` CLI (as tests/support/redis_server.rs)."""
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["req", "-x509", *ec, "-keyout", "ca.key", "-out", CA_FILE, "-days", "2", "-subj", "/CN=taskmanager test CA"]
        + ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", *ec, "-keyout", SERVER_KEY, "-out", "server.csr", "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", "server.csr", "-CA", CA_FILE, "-CAkey", "ca.key", "-set_serial", "2"]
        + ["-days", "2", "-extfile", "server.ext", "-out", SERVER_CERT],
    ]
    for step in steps:
        try:
            done = subprocess.run(["openssl", *step], cwd=directory, capture_output=True, text=True)
        except FileNotFoundError as e:
            raise RedisServerError(f"cannot run `openssl` ({e}): TLS tests need the openssl CLI") from None
        if done.returncode != 0:
            raise RedisServerError(f"openssl {step} failed: {done.stderr}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_from(path: str, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return b""


def _encode(args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _read_reply(reader, out: List[str]) -> bool:
    """Appends one reply to ``out``; True if it was a (non-nil) array."""
    line = reader.readline()
    if not line:
        raise ConnectionError("connection closed before a reply")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n").decode("utf-8", "replace")
    if kind in (b"+", b":"):
        out.append(rest)
    elif kind == b"-":
        raise RedisReplyError(rest)
    elif kind == b"$":
        n = int(rest)
        if n < 0:
            out.append("(nil)")
        else:
            data = reader.read(n + 2)
            if len(data) < n + 2:
                raise ConnectionError("connection closed inside a reply")
            out.append(data[:n].decode("utf-8", "replace"))
    elif kind == b"*":
        n = int(rest)
        if n < 0:
            out.append("(nil)")
            return False
        for _ in range(n):
            if not _read_reply(reader, out):
                out.append("\n")
        return True
    else:
        raise ConnectionError(f"unknown reply {line!r}")
    return False
