"""A program for test_retry_faults.py: a module-level ``manager`` that
``python -m taskmanager worker _retry_app:manager`` runs, configured from
the environment as ``_worker_app.py`` is (``TM_URL``, ``TM_PREFIX``,
``TM_LOG``, ``TM_LEASE``, ``TM_MAX_WORKERS``, ``TM_MAX_DELIVERIES``).

Its one task, ``Flaky.flaky(key, failures, seconds)``, fails (with a
``ConnectionError``) on its attempts up to ``failures`` and succeeds on the
next. A task does not see its attempt number, so it reads it from Redis:
the stream entry this process holds for the task (``XPENDING`` lists each
pending entry with its consumer, whose name carries the holder's pid in
hex; the entry's ``attempt`` field, absent on the first attempt). So a run
knows which entry it is (a re-run after a take-over is the same entry, a
retry is a new one) and which attempt; it logs, one line each,

    <pid> start <key> <attempt> <entry id> <held|taken>
    <pid> fail <key> <attempt> <entry id>     (then raises, TAIL s later)
    <pid> done <key> <attempt> <entry id>     (then returns, TAIL s later)

``taken``: another process took the entry over while this one lived (a
pause past the lease). ``<pid> orphan <key>``: no entry of the task is
pending any more (another run of it was acknowledged first; this run's
ack finds nothing). ``<pid> lookup <key> <what>``: it cannot tell which
entry it runs as (two of one task held here would be a duplicate); then
it raises a ``LookupError``, which is not retried.
"""

import json
import os
import socket
import time

from taskmanager import Module, TaskManager

LOG = os.environ.get("TM_LOG", os.devnull)
URL = os.environ.get("TM_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("TM_PREFIX", "taskmanager")
GROUP = "taskmanager"
# How long a run goes on after it logged its outcome.
TAIL = 0.05


def note(what: str) -> None:
    # One write per line: lines of concurrent runs never interleave.
    with open(LOG, "a") as f:
        f.write(f"{os.getpid()} {what}\n")


manager = TaskManager(
    broker=URL,
    broker_prefix=PREFIX,
    broker_lease=float(os.environ.get("TM_LEASE", "30")),
    broker_timeout=2,
    submit_only=True,
    broker_max_deliveries=int(os.environ["TM_MAX_DELIVERIES"]) if "TM_MAX_DELIVERIES" in os.environ else None,
)


def _encode(args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _reply(reader):
    """One RESP reply: str, int, None or a (nested) list; an error raises."""
    line = reader.readline()
    if not line:
        raise ConnectionError("connection closed before a reply")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n").decode()
    if kind == b"+":
        return rest
    if kind == b":":
        return int(rest)
    if kind == b"-":
        raise RuntimeError(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else reader.read(n + 2)[:n].decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_reply(reader) for _ in range(n)]
    raise ConnectionError(f"unknown reply {line!r}")


def redis_command(*args):
    host, _, port = URL.split("//", 1)[1].split("/", 1)[0].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(_encode(args))
        with sock.makefile("rb") as reader:
            return _reply(reader)


def stream_key(module: str, name: str) -> str:
    """As ``Broker::stream_key`` names it (src/broker/keys.rs)."""

    def escape(part):
        return part.replace("%", "%25").replace("/", "%2F")

    return f"{PREFIX}:s:{escape(module)}/{escape(name)}"


def key_of(fields: dict) -> "str | None":
    try:
        return json.loads(fields.get("args", ""))["args"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def my_entry(key: str):
    """(entry id, attempt, how) of the entry of task ``key`` this run is:
    the one this process holds (how ``"held"``); else, if another consumer
    took it over while this process lived (a heartbeat late past the
    lease), that one (``"taken"``). None if no entry of the key is pending
    (acknowledged already by another run of it: this run's own ack will
    find nothing pending)."""
    stream = stream_key(f"{__name__}:Flaky", "flaky")
    pid = f"{os.getpid():x}"
    held, others = [], []
    for entry_id, consumer, _idle, _delivered in redis_command("XPENDING", stream, GROUP, "-", "+", 1000) or []:
        [[_, flat]] = redis_command("XRANGE", stream, entry_id, entry_id) or [[None, []]]
        fields = dict(zip(flat[::2], flat[1::2]))
        if key_of(fields) == key:
            # A consumer is named <host>-<pid in hex>-<nanos in hex>.
            mine = consumer.rsplit("-", 2)[-2:-1] == [pid]
            (held if mine else others).append((entry_id, int(fields.get("attempt") or 1)))
    if len(held) == 1:
        return (*held[0], "held")
    if not held and len(others) == 1:
        return (*others[0], "taken")
    if not held and not others:
        return None
    note(f"lookup {key} held {held} others {others}")
    raise LookupError(f"{key}: pending entries held here {held}, by others {others}")


class Flaky(Module):
    def flaky(self, key: str, failures: int, seconds: float) -> dict:
        found = my_entry(key)
        if found is None:
            note(f"orphan {key}")
            raise LookupError(f"{key}: no entry pending")
        entry_id, attempt, how = found
        note(f"start {key} {attempt} {entry_id} {how}")
        time.sleep(seconds)
        # The outcome is logged a little before the run ends, so that some
        # kills fall between a run's outcome and its acknowledgement.
        if attempt <= failures:
            note(f"fail {key} {attempt} {entry_id}")
            time.sleep(TAIL)
            raise ConnectionError(f"{key}: attempt {attempt} fails")
        note(f"done {key} {attempt} {entry_id}")
        time.sleep(TAIL)
        return {"key": key, "attempt": attempt, "entry": entry_id, "pid": os.getpid()}


flaky = Flaky(task_manager=manager, max_workers=int(os.environ.get("TM_MAX_WORKERS", "1")))
