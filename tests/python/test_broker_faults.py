"""Faults across processes in the broker mode, against a real redis-server:
a worker SIGKILLed mid-task, Redis SIGKILLed and restarted mid-run, a task
that raises in a worker process. The Python twins of the fault tests in
tests/redis_broker.rs (figures in RELIABILITY.md, "More than one process").

Every process a test starts (workers, redis-server) is killed and reaped in
a ``finally``, whatever the outcome; every wait has a deadline, so a hang is
a failure, not a stuck run. Figures are printed as ``figure: ...`` (see them
with ``pytest -s``).

The test process's manager is not ``submit_only`` here, so where a test
needs a task to run in a given worker process, it submits *before*
starting its own manager: a submission needs no started manager, only the
results do. Results of handles made before the start arrive once it
starts. (test_worker_command.py covers ``submit_only`` processes.)
"""

import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from taskmanager import RemoteError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _broker_app  # noqa: E402

# How long a worker process may take to say "ready".
READY = 20.0


def start_worker(url, prefix, log, *extra):
    """A worker process of _broker_app.py, once it printed "ready". The
    caller kills it (``stop_all``) in a ``finally``."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_broker_app.py"), url, prefix, str(log), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], READY)
        line = proc.stdout.readline().strip() if ready else ""
        assert line == "ready", f"worker {proc.pid} did not start within {READY} s (said {line!r})"
    except BaseException:
        stop_all([proc])
        raise
    return proc


def stop_all(procs):
    """SIGKILL and reap each process (idempotent)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def cleanup(manager, workers):
    """Shuts the manager down (if there is one), then kills the workers,
    whatever happens."""
    try:
        if manager is not None:
            manager.shutdown()
    finally:
        stop_all(workers)


def lines(log):
    """The log's lines as (pid, what) pairs."""
    try:
        text = log.read_text()
    except FileNotFoundError:
        return []
    return [(int(pid), what) for pid, _, what in (line.partition(" ") for line in text.splitlines())]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.02)


def test_a_worker_killed_mid_task_is_replaced_and_the_task_runs_exactly_once_more(redis_server, tmp_path):
    prefix, log = uuid.uuid4().hex, tmp_path / "log"
    workers = []
    manager = None
    try:
        # Both workers run before the task exists: either may claim it.
        workers = [start_worker(redis_server.url, prefix, log, "--lease", "1.0") for _ in range(2)]
        # This process's lease is long, so it never takes the task over
        # itself (its XAUTOCLAIM wants 30 s idle): the surviving worker must.
        manager, mailer, _ = _broker_app.make(redis_server.url, prefix, str(log), lease=30.0)
        handle = mailer.add_task(mailer.slow, args=[1.5, "job"])
        wait_for(lambda: any(what == "start job" for _, what in lines(log)), 10, "a worker started the task")
        (claimer,) = [pid for pid, what in lines(log) if what == "start job"]
        by_pid = {p.pid: p for p in workers}
        assert claimer in by_pid, f"started by {claimer}, not a worker {sorted(by_pid)}"
        victim = by_pid[claimer]
        (survivor,) = [p for p in workers if p is not victim]
        manager.start_thread()  # results from here on; the task is claimed already

        killed_at = time.monotonic()
        victim.kill()
        victim.wait(timeout=10)
        value = handle.result(timeout=15)
        took = time.monotonic() - killed_at
        print(f"\nfigure: worker SIGKILLed mid-task (lease 1 s, task 1.5 s): result {took:.2f} s after the kill")

        assert value == {"tag": "job", "pid": survivor.pid}, f"{value}; log: {lines(log)}"
        runs = lines(log)
        starts = [pid for pid, what in runs if what == "start job"]
        ends = [pid for pid, what in runs if what == "end job"]
        assert starts == [victim.pid, survivor.pid], f"one killed run, then exactly one more: {runs}"
        assert ends == [survivor.pid], f"exactly one run finished: {runs}"
        # Taken over after the lease, then run in full.
        assert 1.5 <= took < 10, f"result {took:.2f} s after the kill"
        assert survivor.poll() is None, "the surviving worker still runs"
    finally:
        cleanup(manager, workers)


def test_redis_killed_and_restarted_mid_run_loses_no_acknowledged_submission(redis_server_factory, tmp_path):
    # AOF written and fsynced before each reply: what Redis acknowledged
    # survives its SIGKILL.
    server = redis_server_factory("--appendonly", "yes", "--appendfsync", "always")
    prefix, log = uuid.uuid4().hex, tmp_path / "log"
    workers = []
    manager = None
    killer = None
    try:
        workers = [start_worker(server.url, prefix, log)]
        manager, mailer, _ = _broker_app.make(server.url, prefix, str(log), timeout=0.5)
        manager.start_thread()

        accepted = {}  # i -> handle
        refused = []  # i
        unexpected = []  # (i, exception)
        outage = {}
        restarted = threading.Event()
        killer_error = []

        def kill_and_restart():
            try:
                time.sleep(0.7)
                outage["kill"] = time.monotonic()
                server.kill()  # SIGKILL while submissions, runs and acks are in flight
                time.sleep(1.0)
                outage["restart"] = time.monotonic()
                server.restart()  # same port, same AOF
                outage["up"] = time.monotonic()
            except BaseException as e:  # reported by the main thread
                killer_error.append(e)
            finally:
                restarted.set()

        killer = threading.Thread(target=kill_and_restart, daemon=True)
        killer.start()
        deadline = time.monotonic() + 12
        i, after_restart = 0, 0
        while after_restart < 150 and time.monotonic() < deadline:
            was_up_again = restarted.is_set()
            try:
                if i % 20 == 0:  # some runs last long enough to be cut by the kill
                    accepted[i] = mailer.add_task(mailer.slow, args=[0.2, f"t{i}"])
                else:
                    accepted[i] = mailer.add_task(mailer.send, args=[f"t{i}"])
            except ConnectionError:
                refused.append(i)
            except Exception as e:  # anything else is a defect: kept, asserted below
                unexpected.append((i, e))
            if was_up_again:
                after_restart += 1
            i += 1
            time.sleep(0.005)
        killer.join(timeout=15)
        assert not killer.is_alive(), "redis restart did not finish"
        assert not killer_error, f"redis restart failed: {killer_error}"
        assert not unexpected, f"submit raised neither a handle nor ConnectionError: {unexpected[:5]}"

        lost = {}
        results_deadline = time.monotonic() + 20
        for n, handle in accepted.items():
            try:
                value = handle.result(timeout=max(0.1, results_deadline - time.monotonic()))
            except Exception as e:
                lost[n] = repr(e)
                continue
            if value.get("to", value.get("tag")) != f"t{n}":
                lost[n] = f"wrong result {value!r}"
        # Completed runs of each submission: "send tN", or "end tN" of a slow one.
        runs = Counter(what.split()[1] for _, what in lines(log) if what.startswith(("send t", "end t")))
        never_ran = [n for n in accepted if runs[f"t{n}"] == 0]
        duplicates = {n: runs[f"t{n}"] for n in accepted if runs[f"t{n}"] > 1}
        refused_but_ran = [n for n in refused if runs[f"t{n}"] > 0]
        print(
            f"\nfigure: redis SIGKILLed {outage['restart'] - outage['kill']:.2f} s, back after "
            f"{outage['up'] - outage['kill']:.2f} s: {i} submissions, {len(accepted)} accepted, "
            f"{len(refused)} refused, {len(lost)} lost, {len(never_ran)} accepted never ran, "
            f"{len(duplicates)} ran twice or more {duplicates}, {len(refused_but_ran)} refused but ran"
        )
        diagnosis = ""
        if lost or never_ran:
            stream = f"{prefix}:s:_broker_app:Mailer/send"
            diagnosis = (
                f"; stream length {server.command('XLEN', stream)!r}, "
                f"pending {server.command('XPENDING', stream, 'taskmanager')!r}, "
                f"workers alive {[p.poll() is None for p in workers]}"
            )
        assert not lost, f"accepted submissions without their result: {dict(list(lost.items())[:10])}{diagnosis}"
        assert not never_ran, f"accepted submissions that never ran: {never_ran[:10]}{diagnosis}"
        assert refused, "no submission was refused: Redis was down for 1 s"
        assert len(accepted) > len(refused) // 10, f"{len(accepted)} accepted"
        assert any(n > max(refused) for n in accepted), "nothing was accepted once Redis was back"
        assert all(p.poll() is None for p in workers), "a worker died with Redis"
    finally:
        try:
            if killer is not None:
                killer.join(timeout=15)
            if manager is not None:
                manager.shutdown()
        finally:
            stop_all(workers)


def test_a_task_that_raises_in_a_worker_process_comes_back_typed_and_the_worker_runs_on(redis_server, tmp_path):
    prefix, log = uuid.uuid4().hex, tmp_path / "log"
    workers = []
    manager = None
    try:
        workers = [start_worker(redis_server.url, prefix, log)]
        (worker,) = workers
        # Not started yet: only the worker process claims.
        manager, mailer, _ = _broker_app.make(redis_server.url, prefix, str(log))
        failed = mailer.add_task(mailer.fail, args=["boom"])
        wait_for(lambda: (worker.pid, "fail boom") in lines(log), 10, "the worker ran the failing task")
        after = [mailer.add_task(mailer.send, args=[f"after{n}"]) for n in range(3)]
        wait_for(lambda: sum(what.startswith("send after") for _, what in lines(log)) == 3, 10, "3 more tasks ran")
        manager.start_thread()
        with pytest.raises(RemoteError) as info:
            failed.result(timeout=10)
        assert info.value.kind == "ValueError" and info.value.message == "boom"
        assert "Traceback" in info.value.remote_traceback and "in fail" in info.value.remote_traceback
        assert [h.result(timeout=10) for h in after] == [{"to": f"after{n}", "pid": worker.pid} for n in range(3)]
        assert worker.poll() is None, "the worker process still runs"
    finally:
        cleanup(manager, workers)


def test_a_submission_to_a_redis_that_never_answers_fails_within_broker_timeout_saying_where(redis_server, tmp_path):
    # SIGSTOP: the kernel still accepts connections, Redis never answers.
    # Both a pooled connection (the reply never comes) and a new one (its
    # handshake never ends) must fail within one broker_timeout; a new one
    # took two (the handshake's timeout, then the reply's).
    manager, mailer, _ = _broker_app.make(redis_server.url, uuid.uuid4().hex, str(tmp_path / "log"), timeout=1)
    stopped = False
    try:
        mailer.add_task(mailer.send, args=["before"])  # leaves a pooled connection
        os.kill(redis_server.pid, signal.SIGSTOP)
        stopped = True
        for connection in ("pooled", "new"):
            started = time.monotonic()
            with pytest.raises(ConnectionError) as raised:
                mailer.add_task(mailer.send, args=[connection])
            took = time.monotonic() - started
            message = str(raised.value)
            print(f"figure: python broker_timeout=1, Redis stopped, {connection} connection: {took:.2f} s")
            assert 0.9 <= took < 1.9, f"{connection}: {took:.2f} s: {message}"
            assert f"Redis at 127.0.0.1:{redis_server.port} did not answer within 1.0 s (XADD to " in message, message
    finally:
        if stopped:
            os.kill(redis_server.pid, signal.SIGCONT)
        manager.shutdown()
