"""Shared schedules have an identity and follow the code (issue 26): a
schedule's key is ``name=`` or its task and a digest of its arguments;
registering it again with the same definition keeps it (one schedule for
every replica, on one grid); with a changed interval or changed arguments
under the same key it is updated in place; two schedules of one method
with different arguments coexist; and a schedule no program registers any
more is listed and removed by key, from the API and the CLI.
"""

import json
import subprocess
import sys

import pytest

from taskmanager import Module

from _util import HERE

redis_only = pytest.mark.parametrize("mode", ["redis"], indirect=True)


class Ticker(Module):
    def tick(self, label):
        return label


def schedules(manager):
    return {s.key: s for s in manager.cluster_stats().schedules}


@redis_only
def test_registering_again_keeps_the_same_definition_and_updates_a_changed_one(tm):
    manager = tm()
    ticker = Ticker(task_manager=manager)
    first = ticker.schedule_task(ticker.tick, 60, args=("a",), reoccurring=True, name="report")
    assert (first.created, first.updated) == (True, False)
    again = ticker.schedule_task(ticker.tick, 60, args=("a",), reoccurring=True, name="report")
    assert (again.created, again.updated) == (False, False), "a replica's registration keeps it"
    due_before = schedules(manager)["report"].next_due
    faster = ticker.schedule_task(ticker.tick, 30, args=("a",), reoccurring=True, name="report")
    assert (faster.created, faster.updated) == (False, True), "a deploy's new interval updates it"
    info = schedules(manager)["report"]
    assert info.interval == 30.0
    assert info.next_due <= 30.0 < due_before, "a new interval starts a new grid from now"
    other_args = ticker.schedule_task(ticker.tick, 30, args=("b",), reoccurring=True, name="report")
    assert other_args.updated, "changed arguments under one key update it"
    assert list(schedules(manager)) == ["report"]


@redis_only
def test_two_schedules_of_one_method_with_different_arguments_coexist(tm):
    manager = tm()
    ticker = Ticker(task_manager=manager)
    a = ticker.schedule_task(ticker.tick, 60, args=("a",), reoccurring=True)
    b = ticker.schedule_task(ticker.tick, 60, args=("b",), reoccurring=True)
    assert a.created and b.created and a.key != b.key
    assert set(schedules(manager)) == {a.key, b.key}
    assert all(key.startswith(ticker._tm_name + ".tick#") for key in (a.key, b.key))


@redis_only
def test_a_schedule_no_longer_in_the_code_is_paused_resumed_and_removed_by_key(tm):
    manager = tm()
    ticker = Ticker(task_manager=manager)
    ticker.schedule_task(ticker.tick, 60, args=("old",), reoccurring=True, name="retired")
    orphan = manager.shared_schedule("retired")
    assert (orphan.key, orphan.created, orphan.updated) == ("retired", False, False)
    assert orphan.pause() and schedules(manager)["retired"].paused
    assert orphan.resume() and not schedules(manager)["retired"].paused
    assert orphan.cancel()
    assert "retired" not in schedules(manager)
    assert not manager.shared_schedule("retired").cancel(), "gone: nothing to remove"
    with pytest.raises(TypeError, match="key must be a str"):
        manager.shared_schedule(3)


def cli(c, *args):
    return subprocess.run(
        [sys.executable, "-m", "taskmanager", "schedules", "_worker_app:manager", *args],
        env=c.env, cwd=HERE, capture_output=True, text=True, timeout=60,
    )


def test_the_schedules_cli_lists_pauses_resumes_and_removes(cluster):
    cluster = cluster()
    app = cluster.submitter()
    app.jobs.schedule_task(app.jobs.slow, 3600, args=(0, "hourly"), reoccurring=True, name="hourly")
    listed = cli(cluster, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [info] = json.loads(listed.stdout)
    assert (info["key"], info["interval"], info["paused"]) == ("hourly", 3600.0, False)
    assert cli(cluster, "pause", "hourly").stdout.strip() == "paused hourly"
    again = cli(cluster, "pause", "hourly")
    assert again.returncode == 0 and again.stdout.strip() == "hourly was paused already", again
    assert "paused" in cli(cluster, "list").stdout
    assert cli(cluster, "resume", "hourly").stdout.strip() == "resumed hourly"
    removed = cli(cluster, "remove", "hourly")
    assert removed.returncode == 0 and removed.stdout.strip() == "removed hourly", removed
    gone = cli(cluster, "remove", "hourly")
    assert gone.returncode == 1 and "no schedule 'hourly'" in gone.stderr
    assert cli(cluster, "list").stdout.strip() == "no shared schedules"
