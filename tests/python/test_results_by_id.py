"""Results by id (issue 26): a handle's ``task_id`` is looked up from
another manager (another process, in production: a later web request) with
``TaskManager.result`` and ``task_state``, within the result's TTL (the
workers' ``broker_result_ttl``, 10 min by default, or the task's own
``result_ttl``; ``ignore_result=True`` keeps it only 60 s). In-process
there is nothing to look up: results live in their handles.
"""

import time
import uuid

import pytest

from taskmanager import Module, RemoteError, TaskManager

from _util import SOON

redis_only = pytest.mark.parametrize("mode", ["redis"], indirect=True)


class Reports(Module):
    def build(self, n):
        return {"rows": n}

    def broken(self):
        raise ValueError("no data")


@redis_only
def test_a_result_is_looked_up_by_id_from_another_manager(tm):
    prefix = f"rid-{uuid.uuid4().hex}"
    worker = tm(broker_prefix=prefix)
    reports = Reports(task_manager=worker)
    # The web request: enqueue, keep the id, drop the handle.
    task_id = reports.add_task(reports.build, args=(7,)).task_id
    failed_id = reports.add_task(reports.broken).task_id
    assert isinstance(task_id, str) and task_id != failed_id
    # A later request, in another manager on the same broker and prefix.
    other = tm(broker_prefix=prefix, submit_only=True)
    assert other.result(task_id, timeout=SOON) == {"rows": 7}
    assert other.result(task_id, timeout=SOON) == {"rows": 7}, "kept after it was read"
    assert other.task_state(task_id) == "finished"
    with pytest.raises(RemoteError, match="no data"):
        other.result(failed_id, timeout=SOON)
    assert other.task_state(failed_id) == "failed"
    later = reports.schedule_task(reports.build, 60, args=(1,))
    assert other.task_state(later.task_id) == "delayed"
    assert later.cancel()
    assert other.task_state("no-such-task") == "unknown"
    with pytest.raises(TimeoutError, match='no result for task "no-such-task" within 0.2 s'):
        other.result("no-such-task", timeout=0.2)


@redis_only
def test_result_ttl_and_ignore_result_bound_how_long_redis_keeps_it(tm, session_redis):
    prefix = f"rid-{uuid.uuid4().hex}"
    manager = tm(broker_prefix=prefix)
    reports = Reports(task_manager=manager)
    # Fire and forget: only the id is kept, as a web request would.
    kept = reports.add_task(reports.build, args=(1,), result_ttl=120).task_id
    ignored = reports.add_task(reports.build, args=(2,), ignore_result=True).task_id
    default = reports.add_task(reports.build, args=(3,)).task_id
    assert [manager.result(t, timeout=SOON) for t in (kept, ignored, default)] == [{"rows": n} for n in (1, 2, 3)]

    def pttl(task_id):
        return int(session_redis.command("PTTL", f"{prefix}:r:{task_id}"))

    assert 110_000 <= pttl(kept) <= 120_000
    assert 50_000 < pttl(ignored) <= 60_000
    assert 590_000 <= pttl(default) <= 600_000
    # A result its handle received stays too: its id may be looked up later.
    waited = reports.add_task(reports.build, args=(4,))
    assert waited.result(SOON) == {"rows": 4}
    time.sleep(0.3)
    assert manager.task_state(waited.task_id) == "finished"
    with pytest.raises(ValueError, match="not both"):
        reports.add_task(reports.build, args=(1,), result_ttl=5, ignore_result=True)
    with pytest.raises(TypeError, match="ignore_result must be a bool"):
        reports.add_task(reports.build, args=(1,), ignore_result="yes")
    with pytest.raises(ValueError, match="result_ttl must be >= 0"):
        reports.add_task(reports.build, args=(1,), result_ttl=-1)


def test_in_process_handles_have_no_task_id_and_nothing_is_looked_up(manager):
    handle = manager.add_task({"method": lambda: 1, "result_ttl": 30})
    assert handle.result(SOON) == 1
    assert handle.task_id is None
    with pytest.raises(RuntimeError, match="result\\(\\) needs a TaskManager with broker="):
        manager.result("x")
    with pytest.raises(RuntimeError, match="task_state\\(\\) needs a TaskManager with broker="):
        TaskManager().task_state("x")
