"""The edges of a process's life, in child interpreters: interpreter exit with
tasks still running (daemon and not), Ctrl-C at exit, fork, and
multiprocessing. Each mode runs 10 times, with a hard timeout, and must end
with the expected status and no fatal error on stderr.

Before this suite existed, a daemon manager whose task was running Python
code at exit crashed the process (SIGSEGV or SIGABRT, "FATAL: exception not
rethrown") every time, and a forked child hung at exit.
"""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

RUNS = 10
PARALLEL = 5
HARD_TIMEOUT = int(os.environ.get("TM_HARD_TIMEOUT", "30"))
FATAL_MARKS = ("Fatal Python error", "FATAL", "Segmentation fault", "Aborted", "panicked", "core dumped")


class Run:
    def __init__(self, returncode, elapsed, out, err, after_signal):
        self.returncode = returncode
        self.elapsed = elapsed
        self.out = out
        self.err = err
        self.after_signal = after_signal

    def __repr__(self):
        return f"<Run rc={self.returncode} {self.elapsed:.2f}s err={self.err[-800:]!r}>"


def _start(script):
    # A session of its own: a hung child is killed with everything it
    # forked (a grandchild would hold the pipes open, and live on).
    return subprocess.Popen(
        [sys.executable, "-W", "ignore::DeprecationWarning", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(script.parent),
        start_new_session=True,
    )


def _kill(proc):
    """Kills ``proc``'s session; returns what it wrote, if not read yet."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.stdout is not None and not proc.stdout.closed:
        return proc.communicate()
    proc.wait()
    return "", ""


def _stacks(pid):
    """Every thread's native stack of a hung child, when gdb is installed:
    a hang seen once in hundreds of runs must leave its evidence."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return "(no gdb: no stacks)"
    try:
        done = subprocess.run(
            [gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
            capture_output=True, text=True, timeout=60,
        )
    except subprocess.TimeoutExpired:
        return "(gdb timed out)"
    return "thread stacks:\n" + done.stdout[-20000:]


def run_many(tmp_path, source, runs=RUNS, sigint_when_ready=False):
    """Runs ``source`` ``runs`` times (``PARALLEL`` at a time). With
    ``sigint_when_ready``, each child is sent one SIGINT once it prints
    ``ready`` (0.2 s later). Every child is killed if it outlives ``HARD_TIMEOUT``."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    results = []
    for start in range(0, runs, PARALLEL):
        procs = [_start(script) for _ in range(min(PARALLEL, runs - start))]
        try:
            for proc in procs:
                t0 = time.monotonic()
                signalled = None
                if sigint_when_ready:
                    line = proc.stdout.readline()
                    assert line == "ready\n", (line, proc.stderr.read() if proc.poll() is not None else "")
                    # Not at once: a signal that lands between two bytecodes
                    # just before a blocking call waits for that call to end,
                    # in any Python program.
                    time.sleep(0.2)
                    proc.send_signal(signal.SIGINT)
                    signalled = time.monotonic()
                try:
                    out, err = proc.communicate(timeout=HARD_TIMEOUT)
                except subprocess.TimeoutExpired:
                    stacks = _stacks(proc.pid)
                    out, err = _kill(proc)
                    pytest.fail(f"child hung for {HARD_TIMEOUT} s; stderr: {err[-2000:]}\n{stacks}")
                end = time.monotonic()
                results.append(Run(proc.returncode, end - t0, out, err, end - signalled if signalled else None))
        finally:
            for proc in procs:
                _kill(proc)  # and whatever it forked, even if it exited
    return results


# Exit is bounded by 1 s of grace plus the interpreter's own exit, about
# 1.5 s here on a quiet machine; the bounds below are generous because five
# children with busy workers share two loaded cores (seen: 14 s), and a hang
# is what they catch.
def assert_clean(runs, returncode, max_seconds):
    for run in runs:
        assert run.returncode == returncode, run
        for mark in FATAL_MARKS:
            assert mark not in run.err, run
        assert run.elapsed < max_seconds, run


BUSY = "lambda: [sum(range(100)) for _ in iter(int, 1)]"


# ---------------------------------------------------------------------------
# Interpreter exit with a daemon manager.


@pytest.mark.parametrize("method", [BUSY, "lambda: time.sleep(60)"], ids=["running-python", "blocked"])
def test_daemon_exit_with_a_task_still_running(tmp_path, method):
    runs = run_many(
        tmp_path,
        f"""
        from taskmanager import TaskManager; import time
        m = TaskManager(); m.start_thread(daemon=True)
        m.add_task({{"method": {method}}})
        time.sleep(0.2)
        """,
    )
    # Before: SIGSEGV or SIGABRT every time with a task running Python code.
    # Now bounded: 1 s for the running task, then it is abandoned (the
    # blocked one is not waited for to its 60 s end).
    assert_clean(runs, 0, max_seconds=20)
    assert all(run.err == "" for run in runs), runs


def test_daemon_exit_while_stdout_flushes_and_tasks_sleep_in_a_loop(tmp_path):
    # Finalization lets go of the GIL to write buffered output: a worker
    # inside Python then tries to take it.
    runs = run_many(
        tmp_path,
        f"""
        from taskmanager import TaskManager, Module; import sys, time
        m = TaskManager(); m.start_thread(daemon=True)
        mod = Module(task_manager=m, max_workers=3)
        mod.add_task({BUSY})
        mod.add_task(lambda: [time.sleep(0.001) for _ in iter(int, 1)])
        mod.schedule_task(lambda: sum(range(10000)), 0.001, reoccurring=True)
        time.sleep(0.2)
        sys.stdout.write("x" * 100000)
        """,
    )
    assert_clean(runs, 0, max_seconds=20)
    assert all(len(run.out) == 100000 for run in runs), "buffered output was lost"


@pytest.mark.parametrize(
    "ending, status", [("sys.exit(3)", 3), ("raise ValueError('main failed')", 1)], ids=["sys.exit", "exception"]
)
def test_daemon_exit_keeps_the_exit_status_of_the_main_thread(tmp_path, ending, status):
    runs = run_many(
        tmp_path,
        f"""
        from taskmanager import TaskManager; import sys, time
        m = TaskManager(); m.start_thread(daemon=True)
        m.add_task({{"method": {BUSY}}})
        time.sleep(0.1)
        {ending}
        """,
    )
    assert_clean(runs, status, max_seconds=20)
    if status == 1:
        assert all("ValueError: main failed" in run.err for run in runs)


def test_daemon_exit_with_busy_callbacks_coroutines_and_listeners(tmp_path):
    # Every way a worker runs Python: the method, callbacks, a coroutine on
    # the worker's loop, a handle's done-callbacks, logging of failures and
    # the event listener, all busy when the interpreter exits.
    runs = run_many(
        tmp_path,
        """
        import asyncio, logging, time
        from taskmanager import TaskManager, Module
        logging.basicConfig(level=logging.CRITICAL)
        def spin(*_):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                sum(range(100))
        async def spin_async():
            while True:
                sum(range(100))
                await asyncio.sleep(0)
        def fail():
            raise ValueError("x")
        m = TaskManager(listener=lambda e: sum(range(1000)))
        m.start_thread(daemon=True)
        mod = Module(task_manager=m, max_workers=6)
        mod.add_task(lambda: 1, callback=spin)
        mod.add_task(spin_async)
        mod.add_task(lambda: 2).add_done_callback(spin)
        mod.schedule_task(fail, 0.001, reoccurring=True)
        mod.schedule_task(lambda: None, 0.001, reoccurring=True)
        mod.add_task(spin)
        time.sleep(0.3)
        """,
    )
    assert_clean(runs, 0, max_seconds=20)


def test_daemon_exit_while_time_limits_are_watched_and_firing(tmp_path):
    # The time-limit watchdog is a thread of ours: at exit it may be asleep
    # until a deadline, or firing into a task's thread.
    runs = run_many(
        tmp_path,
        f"""
        from taskmanager import TaskManager, Module; import time
        m = TaskManager(); m.start_thread(daemon=True)
        mod = Module(task_manager=m, max_workers=4)
        for limit in (0.05, 0.1, 0.19, 30):
            mod.add_task({BUSY}, time_limit=limit)
        time.sleep(0.2)
        """,
    )
    assert_clean(runs, 0, max_seconds=20)


def test_exit_with_tasks_dropped_in_finalization(tmp_path):
    # A manager with no global name left, and handles kept in a cycle, are
    # collected while the interpreter finalizes; queued work is then
    # cancelled without touching the interpreter.
    runs = run_many(
        tmp_path,
        f"""
        from taskmanager import TaskManager, Module; import time
        def make():
            m = TaskManager(); m.start_thread(daemon=True)
            mod = Module(task_manager=m, max_workers=1)
            mod.add_task({BUSY})
            handles = [mod.add_task(print, args=(i,)) for i in range(100)]
            handles.append(handles)
            return m
        keep = [make()]
        time.sleep(0.1)
        """,
    )
    assert_clean(runs, 0, max_seconds=20)


@pytest.mark.parametrize("daemon", [True, False], ids=["daemon-exit", "shutdown-then-exit"])
def test_exit_while_workers_hold_recurring_tasks_between_runs(tmp_path, daemon):
    # Between runs, a recurring task's worker keeps it, and an interpreter
    # thread state with it (see `Pool::run_held`): at exit (a daemon
    # manager), or at shutdown and then exit (a manager that is not: it
    # keeps the process alive until shut down), the worker must let both
    # go (or, past the exit hooks, park) without hanging or crashing,
    # whether it sleeps to the next run or is in one.
    end = "" if daemon else "m.shutdown()"
    runs = run_many(
        tmp_path,
        f"""
        from taskmanager import TaskManager, Module; import time
        m = TaskManager(); m.start_thread(daemon={daemon})
        ticks = []
        for interval in (0.001, 0.005, 30):
            mod = Module(task_manager=m, max_workers=1)
            mod.schedule_task(ticks.append, interval, args=(interval,), reoccurring=True, run_now=True)
        time.sleep(0.2)
        assert 0.001 in ticks and 30 in ticks, ticks
        print("ran", len(ticks) > 20)
        {end}
        """,
    )
    assert_clean(runs, 0, max_seconds=20)
    assert all(run.out == "ran True\n" and run.err == "" for run in runs), runs


# ---------------------------------------------------------------------------
# Ctrl-C at exit.


@pytest.mark.parametrize("method", [BUSY, "lambda: time.sleep(20)"], ids=["running-python", "blocked"])
def test_sigint_at_exit_ends_once_with_sigint_status(tmp_path, method):
    runs = run_many(
        tmp_path,
        f"""
        from taskmanager import TaskManager; import time
        m = TaskManager(); m.start_thread()
        m.add_task({{"method": {method}}})
        time.sleep(0.1)
        print("ready", flush=True)
        """,
        sigint_when_ready=True,
    )
    # Before: a crash with a task running Python code; with a blocked task,
    # a hang until a second Ctrl-C.
    assert_clean(runs, -signal.SIGINT, max_seconds=20)
    assert all(run.after_signal < 15 for run in runs), runs


def test_sigint_in_main_with_a_recurring_task_ends_at_once(tmp_path):
    # Ctrl-C lands in the main thread (a KeyboardInterrupt there): the
    # non-daemon manager must not then keep the process alive.
    runs = run_many(
        tmp_path,
        """
        from taskmanager import TaskManager, Module; import time
        m = TaskManager(); m.start_thread()
        mod = Module(task_manager=m, max_workers=1)
        mod.schedule_task(lambda: sum(range(1000)), 0.01, reoccurring=True)
        print("ready", flush=True)
        time.sleep(30)
        """,

        sigint_when_ready=True,
    )
    for run in runs:
        assert run.returncode == -signal.SIGINT, run
        assert "KeyboardInterrupt" in run.err, run  # the main thread's own traceback
        assert not any(mark in run.err for mark in FATAL_MARKS), run
        assert run.after_signal < 15, run


# ---------------------------------------------------------------------------
# fork and multiprocessing.


FORK_SCRIPT = """
import os, sys, time
from taskmanager import TaskManager, Module

parent = TaskManager(); parent.start_thread()
mod = Module(task_manager=parent, max_workers=2)
ticks = []
ticking = mod.schedule_task(ticks.append, 0.01, args=(1,), reoccurring=True)
unstarted = TaskManager()  # created, not started: usable in the child
queued = unstarted.add_task({"method": lambda: "queued before fork"})

pid = os.fork()
if pid == 0:
    problems = []
    try:
        mod.add_task(print, args=("inherited",))
        problems.append("inherited module accepted a task")
    except RuntimeError as e:
        if "create a new TaskManager" not in str(e):
            problems.append(f"unclear error: {e}")
    try:
        parent.add_task({"method": print})
        problems.append("inherited manager accepted a task")
    except RuntimeError:
        pass
    try:
        parent.start_thread()
        problems.append("inherited manager restarted silently")
    except RuntimeError:
        pass
    child = TaskManager(); child.start_thread()
    if child.add_task({"method": lambda: 6 * 7}).result(timeout=5) != 42:
        problems.append("fresh manager in the child did not work")
    unstarted.start_thread()
    if queued.result(timeout=5) != "queued before fork":
        problems.append("never-started manager did not work in the child")
    child.shutdown()
    print("child problems:", problems, flush=True)
    sys.exit(7 if problems else 0)   # a normal exit: atexit hooks, finalization

_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
before = len(ticks)
time.sleep(0.1)
assert len(ticks) > before, "the parent's recurring task stopped after the fork"
assert parent.add_task({"method": lambda: "parent ok"}).result(timeout=5) == "parent ok"
ticking.cancel()
parent.shutdown()
unstarted.shutdown(cancel_pending=True)
print("child exit code", code, flush=True)
sys.exit(code)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_fork_child_refuses_inherited_manager_and_exits_promptly(tmp_path):
    runs = run_many(tmp_path, FORK_SCRIPT)
    # Before: the child hung 30 s in the exit hook, then forever.
    assert_clean(runs, 0, max_seconds=20)
    assert all("child problems: []" in run.out for run in runs), runs


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_multiprocessing_fork_pool_with_a_recurring_task_in_the_parent(tmp_path):
    runs = run_many(
        tmp_path,
        """
        import multiprocessing, time
        from taskmanager import TaskManager, Module

        def square(x):
            return x * x

        if __name__ == "__main__":
            m = TaskManager(); m.start_thread()
            mod = Module(task_manager=m, max_workers=1)
            ticking = mod.schedule_task(lambda: None, 0.01, reoccurring=True)
            ctx = multiprocessing.get_context("fork")
            t0 = time.monotonic()
            with ctx.Pool(2) as pool:
                assert pool.map(square, range(20)) == [x * x for x in range(20)]
            p = ctx.Process(target=square, args=(3,))
            p.start(); p.join(10)
            assert p.exitcode == 0, p.exitcode
            print("pool took", round(time.monotonic() - t0, 2), flush=True)
            ticking.cancel()
            m.shutdown()
        """,
    )
    # Before: each child hung forever (the parent's recurring task kept the
    # inherited manager "busy" in the child's exit hook).
    assert_clean(runs, 0, max_seconds=20)
