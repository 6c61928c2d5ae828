"""Retries (issue 26) under worker faults, in the broker mode, against a
real redis-server: worker processes (``python -m taskmanager worker
_retry_app:manager``) are SIGKILLed at random and restarted, and now and
then one is SIGSTOPped past its lease and resumed, while tasks fail and
retry; no retry is lost, none is scheduled twice, no attempt number is
skipped.

What separates an allowed re-run from a duplicated retry (see
src/PROTOCOL.md, "Redis", moves 4 and 5): an attempt of a task is one
stream entry. A worker killed before its run's acknowledgement leaves the
entry pending, and a take-over (``XCLAIM``) re-runs that *same entry*, so a
re-run repeats (entry, attempt). A retry is a *new entry*: the ACK that
acknowledges a failed run writes the next attempt to ``P:t:<task id>``
(attempt + 1) in the same script, and ``FIRE`` moves it into the stream as
a new entry. So per task, runs may repeat, but:

- each attempt number is one entry (two entries of attempt N+1 are a retry
  scheduled twice; a take-over of an acknowledged entry, or two ACKs of
  one failed attempt, would make them);
- the attempts are exactly 1 .. failures+1 (none skipped, none past the
  success), each but the last with a completed failed run (its ACK made
  the next), the next one's first start after that failure;
- the ACK scheduled each retry exactly once: ``MONITOR`` sees each
  ``HSET P:t:<task id> ... attempt N`` of the ACK script, and for each task
  they are 2 .. failures+1, once each (even a second scheduling that
  would collapse into the same hash before it fires is seen);
- the handle settles with the last attempt's success.

A worker paused past its lease lives on: its entries are taken over and
re-run, and both runs of such an entry acknowledge; only the first ACK
finds the entry pending, so only it may schedule the retry (``MONITOR``
counts the entries acknowledged twice). The test was checked to fail
(duplicated retries) with the ACK's retry made in two steps, scheduled
and then acknowledged (SIGKILLs alone catch it), and with the retry no
longer gated by the ACK's ``XACK`` (acknowledged entries kept in the
stream); see RELIABILITY.md.

Each run logs its entry and attempt (read from Redis, as the task does not
see its attempt number: see _retry_app.py). Every process is killed and
reaped in a ``finally``; every wait has a deadline. Figures are printed as
``figure: ...`` (``pytest -s``).
"""

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

from taskmanager import Retry

from _util import import_fresh

HERE = Path(__file__).resolve().parent

TASKS = 60
WORKERS = 3
LEASE = 1.0
# Kill a random worker every 0.3 .. 0.7 s, for this long (or until every
# task is done).
KILL_FOR = 12.0
# One fault in this many is a pause past the lease, not a kill.
PAUSE_ONE_IN = 4
# Then every handle settles within this.
SETTLE = 30.0
READY = 20.0


class Monitor:
    """``MONITOR`` on its own connection, in a thread: keeps, of the
    commands scripts run, each ``HSET`` of ``P:t:<task id>`` (the ACK's
    retry) as a (task id, attempt) pair, and counts each ``XACK`` per
    stream entry."""

    QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')

    def __init__(self, port, prefix):
        self.prefix = f"{prefix}:t:"
        self.scheduled = []
        self.acked = Counter()
        self.marker = None
        self.seen = threading.Event()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(b"MONITOR\r\n")
        self.reader = self.sock.makefile("rb")
        assert self.reader.readline().startswith(b"+OK")
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def caught_up(self, server, timeout=10.0):
        """Waits until this monitor has read every command ``server``
        ran before this call (it sees an ``ECHO`` sent now)."""
        self.marker = uuid.uuid4().hex
        self.seen = threading.Event()
        server.command("ECHO", self.marker)
        assert self.seen.wait(timeout), f"MONITOR did not catch up within {timeout} s"

    def _read(self):
        try:
            for line in self.reader:
                if self.marker is not None and self.marker.encode() in line:
                    self.seen.set()
                if b" lua] " not in line or not (b' "HSET" ' in line or b' "XACK" ' in line):
                    continue
                args = self.QUOTED.findall(line.decode("utf-8", "replace"))
                if len(args) > 3 and args[0] == "XACK":
                    self.acked[args[3]] += 1
                elif len(args) > 1 and args[0] == "HSET" and args[1].startswith(self.prefix):
                    fields = dict(zip(args[2::2], args[3::2]))
                    self.scheduled.append((args[1][len(self.prefix) :], fields.get("attempt")))
        except (OSError, ValueError):
            pass  # closed by stop()

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=10)
        self.reader.close()


class Cluster:
    """Worker-command processes of _retry_app.py and this process's own
    (submit_only, started) copy of it, sharing one prefix."""

    def __init__(self, url, tmp_path):
        self.tmp_path = tmp_path
        self.log = tmp_path / "runs.log"
        self.prefix = uuid.uuid4().hex
        self.env = dict(
            os.environ,
            TM_URL=url,
            TM_PREFIX=self.prefix,
            TM_LOG=str(self.log),
            TM_LEASE=str(LEASE),
            TM_MAX_WORKERS="2",
            # Random kills may cut an entry's runs several times in a row:
            # that must not make it poison here.
            TM_MAX_DELIVERIES="1000",
        )
        self.env["PYTHONPATH"] = os.pathsep.join([str(HERE), self.env.get("PYTHONPATH", "")])
        self.procs = []
        self.started = 0
        self.app = None

    def worker(self):
        out = open(self.tmp_path / f"worker-{self.started}.out", "w")
        self.started += 1
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "taskmanager", "worker", "_retry_app:manager"],
                env=self.env,
                cwd=HERE,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        finally:
            out.close()
        proc.out = Path(out.name)
        self.procs.append(proc)
        return proc

    def submitter(self):
        self.app = import_fresh("_retry_app", self.env)
        self.app.manager.start_thread()
        return self.app

    def runs(self):
        """The log's lines as (pid, what, key, rest...) tuples."""
        try:
            text = self.log.read_text()
        except FileNotFoundError:
            return []
        return [tuple(line.split()) for line in text.splitlines()]

    def close(self):
        try:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=10)
        finally:
            if self.app is not None:
                self.app.manager.shutdown(cancel_pending=True, timeout=10)
                sys.modules.pop("_retry_app", None)


class Found:
    def __init__(self):
        self.problems = []
        self.figures = Counter()


def examine(tasks, values, runs, killed, scheduled):
    """Checks the runs logged (``(pid, what, key, ...)``), the retries the
    ACK scheduled (``(task id, attempt)``) and the values the handles
    settled with against each task's failures (see the module docs)."""
    found = Found()
    problems, figures = found.problems, found.figures
    starts = defaultdict(list)  # key -> [(attempt, entry, pid, order)]
    ends = defaultdict(list)  # key -> [(what, attempt, entry, pid, order)]
    for order, r in enumerate(runs):
        if r[1] == "start":
            starts[r[2]].append((int(r[3]), r[4], int(r[0]), order))
        elif r[1] in ("fail", "done"):
            ends[r[2]].append((r[1], int(r[3]), r[4], int(r[0]), order))
        elif r[1] == "orphan":
            # Its entry was acknowledged by another run before it looked:
            # its own ack finds nothing pending.
            figures["orphans"] += 1
        else:
            problems.append(f"a run could not tell its entry: {r}")
    by_task_id = {h.task_id: key for key, (_, h) in tasks.items()}
    retried = defaultdict(list)  # key -> attempts the ACK scheduled
    for task_id, attempt in scheduled:
        if task_id not in by_task_id:
            problems.append(f"a retry scheduled for a task not submitted here: {task_id}")
        else:
            retried[by_task_id[task_id]].append(int(attempt))
    figures["retries"] = len(scheduled)

    for key, (failures, _) in tasks.items():
        entries = defaultdict(set)  # attempt -> entries
        for attempt, entry, _, _ in starts[key]:
            entries[attempt].add(entry)
        attempts = sorted(entries)
        if attempts != list(range(1, failures + 2)):
            problems.append(f"{key}: attempts {attempts} ran, wanted 1..{failures + 1}")
        for attempt, ids in entries.items():
            if len(ids) != 1:
                problems.append(f"{key}: attempt {attempt} ran as {len(ids)} entries {sorted(ids)}: a retry twice")
        # Each attempt but the last failed (a run logged it) before the
        # next one first started; the last one succeeded.
        for attempt in attempts:
            failed = [o for what, a, _, _, o in ends[key] if what == "fail" and a == attempt]
            done = [o for what, a, _, _, o in ends[key] if what == "done" and a == attempt]
            if attempt <= failures and not failed:
                problems.append(f"{key}: attempt {attempt} was retried, but no run of it failed")
            if (attempt <= failures and done) or (attempt > failures and failed):
                problems.append(f"{key}: attempt {attempt} ended wrong: {ends[key]}")
            later = [o for a, _, _, o in starts[key] if a == attempt + 1]
            if later and failed and min(later) < min(failed):
                problems.append(f"{key}: attempt {attempt + 1} started before attempt {attempt} failed")
        if sorted(retried[key]) != list(range(2, failures + 2)):
            wanted = f"wanted 2..{failures + 1} once each"
            problems.append(f"{key}: the ACK scheduled attempts {sorted(retried[key])}, {wanted}")
        if key in values:
            value = values[key]
            done_pids = {p for what, a, _, p, _ in ends[key] if what == "done" and a == failures + 1}
            if (value.get("key"), value.get("attempt")) != (key, failures + 1) or value.get("pid") not in done_pids:
                problems.append(f"{key}: settled with {value}, wanted attempt {failures + 1} of a run that succeeded")

        # Figures: runs of an entry past its first are re-runs.
        per_entry = Counter(entry for _, entry, _, _ in starts[key])
        figures["reruns"] += sum(n - 1 for n in per_entry.values())
        figures["cut"] += sum(
            1
            for _, entry, pid, _ in starts[key]
            if pid in killed and not any(e == entry and p == pid for _, _, e, p, _ in ends[key])
        )
        for entry in per_entry:
            ended = [(p, o) for _, _, e, p, o in ends[key] if e == entry]
            # Re-runs after a run that logged its outcome (killed, or
            # paused past its lease, before its ack).
            if ended:
                first = min(o for _, o in ended)
                figures["rerun_after_end"] += sum(1 for _, e, _, o in starts[key] if e == entry and o > first)
    return found


def wait_ready(proc, timeout=READY):
    deadline = time.monotonic() + timeout
    while " ready: " not in proc.out.read_text():
        assert proc.poll() is None, f"worker {proc.pid} exited: {proc.out.read_text()}"
        assert time.monotonic() < deadline, f"worker {proc.pid} not ready within {timeout} s"
        time.sleep(0.05)


def test_retries_under_worker_sigkills_are_neither_lost_nor_scheduled_twice(redis_server, tmp_path):
    c = Cluster(redis_server.url, tmp_path)
    monitor = None
    try:
        monitor = Monitor(redis_server.port, c.prefix)
        workers = [c.worker() for _ in range(WORKERS)]
        for w in workers:
            wait_ready(w)
        app = c.submitter()
        retry = Retry(5, backoff=0.05, max_backoff=0.2, jitter=0, on=ConnectionError)
        # Task i fails its first i % 4 attempts (0 to 3), runs 0.05 .. 0.25 s.
        tasks = {}
        for i in range(TASKS):
            key, failures = f"k{i:02d}", i % 4
            seconds = 0.05 + 0.2 * (i % 5) / 4
            tasks[key] = (failures, app.flaky.add_task(app.flaky.flaky, args=[key, failures, seconds], retry=retry))

        # Every 0.3 .. 0.7 s a random running worker is SIGKILLed (and
        # another started), or every PAUSE_ONE_IN-th time SIGSTOPped for longer
        # than its lease, then SIGCONTed: its entries are taken over while
        # it lives, and its runs end (and acknowledge) after their copies.
        rng = random.Random()
        kills = []  # (pid, monotonic time)
        paused = {}  # proc -> when to resume it
        pauses = 0
        began = time.monotonic()
        while time.monotonic() - began < KILL_FOR and not all(h.done() for _, h in tasks.values()):
            time.sleep(rng.uniform(0.3, 0.7))
            for proc, until in list(paused.items()):
                if time.monotonic() >= until:
                    proc.send_signal(signal.SIGCONT)
                    del paused[proc]
            running = [w for w in workers if w not in paused]
            victim = rng.choice(running)
            if (len(kills) + pauses) % PAUSE_ONE_IN == PAUSE_ONE_IN - 1 and len(running) > 1:
                victim.send_signal(signal.SIGSTOP)
                paused[victim] = time.monotonic() + rng.uniform(1.5 * LEASE, 2.2 * LEASE)
                pauses += 1
                continue
            victim.kill()
            victim.wait(timeout=10)
            kills.append((victim.pid, time.monotonic()))
            workers[workers.index(victim)] = c.worker()
        for proc in paused:
            proc.send_signal(signal.SIGCONT)
        killing = time.monotonic() - began
        killed = {pid for pid, _ in kills}
        died = [(p.pid, p.returncode, p.out.read_text()[-2000:]) for p in c.procs if p.poll() is not None]
        died = [d for d in died if d[0] not in killed]
        assert not died, f"workers exited by themselves: {died}"

        # Every handle settles, with the last attempt's success.
        wrong = {}
        values = {}
        deadline = time.monotonic() + SETTLE
        for key, (failures, handle) in tasks.items():
            try:
                values[key] = handle.result(timeout=max(0.1, deadline - time.monotonic()))
            except Exception as e:  # kept, asserted below
                wrong[key] = repr(e)
        settled = time.monotonic() - began

        monitor.caught_up(redis_server)
        found = examine(tasks, values, c.runs(), killed, monitor.scheduled)
        takeovers = sum(int(n) for n in redis_server.command("HVALS", f"{c.prefix}:reclaimed").split())
        f = found.figures
        twice = sum(1 for n in monitor.acked.values() if n > 1)
        print(
            f"\nfigure: retries under faults ({TASKS} tasks, {WORKERS} workers x 2, lease {LEASE:.0f} s): "
            f"{len(kills)} SIGKILLs and {pauses} pauses past the lease in {killing:.1f} s; {f['cut']} runs cut by a "
            f"kill, {takeovers} take-overs, {f['reruns']} re-runs of an entry ({f['rerun_after_end']} after a run "
            f"that logged its outcome, {f['orphans']} orphan runs), {twice} entries acknowledged twice (by two runs); "
            f"{f['retries']} retries scheduled (wanted {sum(n for n, _ in tasks.values())}); all settled "
            f"{settled:.1f} s after the faults began; {len(wrong)} lost or failed, {len(found.problems)} problems"
        )
        assert not found.problems and not wrong, "\n".join(
            found.problems[:20] + [f"{key}: did not settle with a success: {e}" for key, e in list(wrong.items())[:10]]
        )
        assert len(kills) >= 5, f"only {len(kills)} kills"
        assert f["cut"] > 0 and takeovers > 0, "no run was cut by a kill and taken over: the test tested nothing"
    finally:
        try:
            c.close()
        finally:
            if monitor is not None:
                monitor.stop()
