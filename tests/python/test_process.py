"""Whole-process behaviour, in child interpreters: the seed example, the
interpreter staying alive for due work, Ctrl-C, daemon managers, never
started managers."""

import collections
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 30


def run_script(tmp_path, source, timeout=TIMEOUT):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, cwd=str(tmp_path)
    )
    return proc, time.monotonic() - t0


def _run_example(*argv):
    """Runs ``examples/<argv>`` and checks that it exited cleanly."""
    proc = subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def test_seed_example_output():
    proc = _run_example("examples/seed.py", "--seconds", "2.5")
    # Lines printed at the same instant by different workers may interleave
    # (print writes the text and the newline separately), so read words.
    words = re.findall(r"every-now|every|hello|once", proc.stdout)
    assert re.sub(r"every-now|every|hello|once", "", proc.stdout).strip() == "", proc.stdout
    assert collections.Counter(words) == {"hello": 2, "once": 1, "every": 2, "every-now": 3}, proc.stdout
    assert "every-now" in words[:3], words


def test_asyncio_example_awaits_handles_within_the_cap():
    proc = _run_example("examples/asyncio_modules.py")
    assert "12 fetches in" in proc.stdout and "https://example.test/0: 200" in proc.stdout, proc.stdout
    assert "completed=12" in proc.stdout and "peak_concurrency=4" in proc.stdout, proc.stdout
    assert "listed: Poller.poll in Poller" in proc.stdout, proc.stdout


def test_process_waits_for_due_one_shot_then_exits(tmp_path):
    proc, elapsed = run_script(
        tmp_path,
        """
        import time
        from taskmanager import TaskManager, Module
        start = time.monotonic()
        manager = TaskManager()
        manager.start_thread()
        mod = Module(task_manager=manager, max_workers=1)
        mod.schedule_task(lambda: print("task ran after %.2f" % (time.monotonic() - start), flush=True), 0.5)
        print("main done", flush=True)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "main done"
    assert len(lines) == 2 and lines[1].startswith("task ran after")
    assert float(lines[1].split()[-1]) >= 0.5 - 0.005
    assert "Traceback" not in proc.stderr
    assert elapsed < 10


def test_process_waits_for_queued_tasks(tmp_path):
    proc, _ = run_script(
        tmp_path,
        """
        import time
        from taskmanager import TaskManager, Module
        manager = TaskManager()
        manager.start_thread()
        mod = Module(task_manager=manager, max_workers=1)
        for i in range(5):
            mod.add_task(lambda i=i: (time.sleep(0.05), print("task", i, flush=True)))
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"task {i}" for i in range(5)]


def test_sigint_stops_recurring_process_quietly(tmp_path):
    script = tmp_path / "recurring.py"
    script.write_text(
        textwrap.dedent(
            """
            from taskmanager import TaskManager, Module
            manager = TaskManager()
            manager.start_thread()
            mod = Module(task_manager=manager, max_workers=2)
            mod.schedule_task(print, 0.1, args=("tick",), kwargs={"flush": True}, reoccurring=True)
            print("main done", flush=True)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline() == "main done\n"
        time.sleep(1.0)
        assert proc.poll() is None, "exited although recurring work is pending"
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        proc.wait(timeout=TIMEOUT)
        waited = time.monotonic() - t0
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert waited < 1.0
    assert "Traceback" not in err, err
    # Ended by the one Ctrl-C, and says so, as an uncaught KeyboardInterrupt would.
    assert proc.returncode == -signal.SIGINT, proc.returncode
    assert out.count("tick") >= 2  # it was alive and ticking for that second


def test_daemon_manager_does_not_keep_process_alive(tmp_path):
    proc, elapsed = run_script(
        tmp_path,
        """
        from taskmanager import TaskManager, Module
        manager = TaskManager()
        manager.start_thread(daemon=True)
        mod = Module(task_manager=manager, max_workers=1)
        mod.schedule_task(print, 3, args=("tick",), reoccurring=True)
        manager.schedule_task({"method": print, "args": ("late",), "delay": 3})
        print("main done", flush=True)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["main done"]  # left before any tick
    assert "Traceback" not in proc.stderr
    assert elapsed < 3


def test_never_started_manager_does_not_hang(tmp_path):
    proc, elapsed = run_script(
        tmp_path,
        """
        from taskmanager import TaskManager, Module
        manager = TaskManager()
        mod = Module(task_manager=manager, max_workers=2)
        for i in range(5):
            mod.add_task(print, args=(i,))
        mod.schedule_task(print, 0.2, args=("recurring",), reoccurring=True)
        mod.schedule_task(print, 5, args=("later",))
        manager.add_task({"method": print, "args": ("dict",)})
        print("main done", flush=True)
        """,
        timeout=15,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.splitlines()[0] == "main done"
    assert "recurring" not in proc.stdout and "later" not in proc.stdout
    assert elapsed < 5


def test_exception_in_task_does_not_change_exit_status(tmp_path):
    proc, _ = run_script(
        tmp_path,
        """
        from taskmanager import TaskManager
        manager = TaskManager()
        manager.start_thread()
        manager.add_task({"method": lambda: 1 / 0})
        manager.schedule_task({"method": print, "args": ("after",), "delay": 0.1})
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "after"
    assert "ZeroDivisionError" in proc.stderr  # logged (logging's last resort)
