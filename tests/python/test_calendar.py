"""Calendar schedules from Python: ``schedule_task(cron=..., tz=...)``,
``at=datetime``, the misfire policies, and the errors that name their
argument. The exact times (DST, the misfire decisions, clock steps) are
proved in Rust with a clock the tests control (tests/calendar_schedule.rs,
tests/calendar_dst.rs); these tests prove the Python face reaches them,
with real time and generous bounds."""

import datetime
import threading
import time
import zoneinfo

import pytest

from taskmanager import Module, TaskManager

from _util import SOON, note, seen, wait_until

UTC = datetime.timezone.utc
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def until_fraction(fraction):
    """Sleeps until the wall clock's fraction of a second is `fraction`."""
    now = time.time()
    time.sleep((fraction - now % 1) % 1)


def test_a_cron_task_runs_at_each_whole_second_of_its_expression(module):
    starts = []
    handle = module.schedule_task(lambda: starts.append(time.time()), cron="* * * * * *")
    assert wait_until(lambda: len(starts) >= 3), starts
    handle.cancel()
    # Each run starts at (just after) a whole second, one second apart.
    assert all(t % 1 < 0.5 for t in starts), [t % 1 for t in starts]
    assert [round(b - a) for a, b in zip(starts, starts[1:])] == [1] * (len(starts) - 1), starts
    assert handle.skipped_ticks == 0 and handle.coalesced_ticks == 0


def test_get_tasks_shows_a_cron_tasks_next_run_in_its_zone(manager, module):
    handle = module.schedule_task(lambda: None, cron="0 9 * * MON-FRI", tz="Europe/Berlin", name="morning")
    [info] = manager.get_tasks()
    assert (info.name, info.cron, info.tz, info.interval) == ("morning", "0 9 * * MON-FRI", "Europe/Berlin", None)
    when = info.next_run
    assert when.tzinfo == BERLIN, when
    assert (when.hour, when.minute, when.second, when.weekday() < 5) == (9, 0, 0, True), when
    assert datetime.datetime.now(UTC) < when <= datetime.datetime.now(UTC) + datetime.timedelta(days=4)
    # An interval task lists its next run in UTC.
    module.schedule_task(lambda: None, 60, reoccurring=True, name="minutely")
    minutely = [t for t in manager.get_tasks() if t.name == "minutely"][0]
    assert minutely.next_run.tzinfo == UTC and minutely.cron is None
    handle.cancel()


def test_a_zoneinfo_object_and_the_dict_form_are_accepted(manager):
    handle = manager.schedule_task(
        {"method": lambda: None, "cron": "30 2 * * *", "tz": BERLIN, "dst_gap": "skip", "dst_fold": "both"}
    )
    [info] = manager.get_tasks()
    assert (info.cron, info.tz) == ("30 2 * * *", "Europe/Berlin")
    assert (info.next_run.hour, info.next_run.minute) == (2, 30)
    handle.cancel()


def test_at_runs_once_at_an_aware_datetime(module):
    at = datetime.datetime.now(UTC) + datetime.timedelta(seconds=0.3)
    handle = module.schedule_task(time.time, at=at)
    ran = handle.result(SOON)
    assert ran >= at.timestamp() - 0.01
    # A time that has passed runs at once; another zone is the same instant.
    past = datetime.datetime.now(BERLIN) - datetime.timedelta(hours=1)
    assert module.schedule_task(lambda: "late", at=past).result(SOON) == "late"


def test_at_lists_its_time(manager, module):
    at = datetime.datetime(2099, 1, 1, 9, tzinfo=BERLIN)
    handle = module.schedule_task(lambda: None, at=at, name="new year")
    [info] = manager.get_tasks()
    assert abs((info.next_run - at).total_seconds()) < 0.01 and info.cron is None
    assert handle.cancel()


BAD = [
    (dict(cron=5), TypeError, "cron must be a cron expression"),
    (dict(cron="61 * * * *"), ValueError, "cron: minute field '61'"),
    (dict(cron="* * * * *", tz="Mars/Base"), ValueError, "tz: unknown time zone 'Mars/Base'"),
    (dict(cron="* * * * *", tz=5), TypeError, "tz must be an IANA time zone name"),
    (dict(at=datetime.datetime(2027, 1, 1)), ValueError, "at must be timezone-aware"),
    (dict(at="2027-01-01"), TypeError, "at must be a timezone-aware datetime"),
    (dict(delay=1, cron="* * * * *"), TypeError, "one of delay, cron and at, got delay and cron"),
    (dict(), TypeError, "needs one of delay"),
    (dict(cron="* * * * *", reoccurring=False), ValueError, "reoccurring=False contradicts cron"),
    (dict(delay=1, misfire="skip"), ValueError, "misfire applies to recurring schedules only"),
    (dict(cron="* * * * *", misfire="later"), ValueError, "misfire must be"),
    (dict(cron="* * * * *", max_catch_up=3), ValueError, "max_catch_up applies with misfire=\"catch_up\""),
    (dict(cron="* * * * *", misfire="catch_up", max_catch_up=0), ValueError, "max_catch_up must be an int from 1"),
    (dict(cron="* * * * *", misfire="catch_up", max_catch_up=True), TypeError, "max_catch_up must be an int"),
    (dict(delay=1, tz="UTC"), ValueError, "tz applies to cron schedules only"),
    (dict(cron="* * * * *", dst_gap="later"), ValueError, "dst_gap must be"),
    (dict(cron="* * * * *", dst_fold="third"), ValueError, "dst_fold must be"),
    (dict(cron="* * * * *", grace=-1), ValueError, "grace must be >= 0"),
    (dict(cron="* * * * *", jitter="1"), TypeError, "jitter"),
    (dict(at=datetime.datetime(2027, 1, 1, tzinfo=UTC), reoccurring=True), ValueError, "at is one run"),
    (dict(cron="* * * * *", retry=2), ValueError, "apply to one-shot tasks"),
]


@pytest.mark.parametrize("kwargs,error,text", BAD, ids=[str(sorted(k)) + t[:12] for k, _, t in BAD])
def test_bad_calendar_arguments_are_typed_errors_naming_the_argument(module, kwargs, error, text):
    with pytest.raises(error, match=None) as raised:
        module.schedule_task(lambda: None, **kwargs)
    assert text in str(raised.value), str(raised.value)


def test_set_interval_of_a_cron_task_is_a_value_error(module):
    handle = module.schedule_task(lambda: None, cron="@hourly")
    with pytest.raises(ValueError, match="no interval"):
        handle.set_interval(5)
    handle.cancel()


class Busy:
    """A one-worker module kept busy from just after a whole second until
    `until` (a fraction into the second after next), while a cron task
    due every second waits behind it: two ticks pass, the latest `until`
    late."""

    def __init__(self, manager, until=0.6):
        self.module = Module(task_manager=manager, max_workers=1)
        self.runs = []
        self.until = until

    def schedule(self, **kwargs):
        until_fraction(0.05)
        end = int(time.time()) + 2 + self.until
        self.blocker = self.module.add_task(lambda: time.sleep(max(0.0, end - time.time())))
        return self.module.schedule_task(lambda: self.runs.append(time.time()), cron="* * * * * *", **kwargs)


def test_coalesce_runs_once_late_for_the_ticks_a_busy_module_missed():
    events = []
    manager = TaskManager(listener=events.append)
    manager.start_thread()
    try:
        busy = Busy(manager)
        handle = busy.schedule()
        busy.blocker.result(SOON)
        assert wait_until(lambda: handle.coalesced_ticks >= 1), handle.coalesced_ticks
        assert len(busy.runs) == 1 and handle.skipped_ticks == 0, (busy.runs, handle.skipped_ticks)
        assert wait_until(lambda: any(e.kind == "coalesced" for e in events)), [e.kind for e in events]
        # Then back on the grid.
        assert wait_until(lambda: len(busy.runs) >= 2)
        handle.cancel()
    finally:
        manager.shutdown(cancel_pending=True)


def test_skip_with_a_grace_runs_no_tick_later_than_it(manager):
    busy = Busy(manager, until=0.6)
    handle = busy.schedule(misfire="skip", grace=0.3)
    busy.blocker.result(SOON)
    assert wait_until(lambda: handle.skipped_ticks >= 2), handle.skipped_ticks
    # Nothing ran late: the first run is at a whole second after the block.
    assert wait_until(lambda: len(busy.runs) >= 1)
    assert busy.runs[0] % 1 < 0.5, busy.runs[0] % 1
    handle.cancel()


def test_catch_up_runs_each_missed_tick_up_to_its_bound(manager):
    busy = Busy(manager, until=0.6)
    handle = busy.schedule(misfire="catch_up", max_catch_up=2)
    busy.blocker.result(SOON)
    assert wait_until(lambda: len(busy.runs) >= 2)
    first, second = busy.runs[:2]
    assert second - first < 0.4, "caught up one after another, not on the grid"
    handle.cancel()


def test_jitter_delays_runs_within_its_bound(module):
    starts = []
    handle = module.schedule_task(lambda: starts.append(time.time()), cron="* * * * * *", jitter=0.4)
    assert wait_until(lambda: len(starts) >= 4, timeout=SOON + 2), starts
    handle.cancel()
    fractions = [t % 1 for t in starts]
    assert all(f < 0.4 + 0.3 for f in fractions), fractions
    # Drawn uniformly up to 0.4 s: four runs all within 50 ms of their
    # second would happen once in 4,096 without jitter's effect.
    assert max(fractions) > 0.05, fractions


def test_the_spec_example_calls_still_work(module):
    done = threading.Event()
    handle = module.schedule_task(done.set, 0.05)
    assert done.wait(SOON) and handle.result(SOON) is None


# --- both modes (in-process, and a Redis broker: the schedule in Redis,
# fired once cluster-wide; this process is the worker) --------------------


class Clocked(Module):
    def tick(self, token):
        note(token, time.time())


def test_a_cron_schedule_runs_each_second_in_either_mode(tm, token):
    manager = tm()
    clocked = Clocked(task_manager=manager, max_workers=1)
    handle = clocked.schedule_task(clocked.tick, cron="* * * * * *", args=(token,), name="clock")
    assert wait_until(lambda: len(seen(token)) >= 3, timeout=SOON + 3), seen(token)
    handle.cancel()
    starts = sorted(seen(token))
    assert all(t % 1 < 0.5 for t in starts), [t % 1 for t in starts]
    gaps = [round(b - a) for a, b in zip(starts, starts[1:])]
    assert gaps == [1] * len(gaps), starts


def test_get_tasks_lists_a_cron_schedule_with_its_next_run_in_its_zone_in_either_mode(tm, token):
    manager = tm()
    clocked = Clocked(task_manager=manager, max_workers=1)
    handle = clocked.schedule_task(clocked.tick, cron="0 9 * * MON-FRI", tz=BERLIN, args=(token,), name="morning")
    listed = [t for t in manager.get_tasks() if t.name == "morning"]
    assert len(listed) == 1, manager.get_tasks()
    [info] = listed
    assert (info.cron, info.tz, info.interval) == ("0 9 * * MON-FRI", "Europe/Berlin", None)
    when = info.next_run
    assert when.tzinfo is not None and when.utcoffset() == when.astimezone(BERLIN).utcoffset(), when
    when = when.astimezone(BERLIN)
    assert (when.hour, when.minute, when.weekday() < 5) == (9, 0, True), when
    assert handle.cancel()
    assert not [t for t in manager.get_tasks() if t.name == "morning"]


def test_at_runs_once_at_an_aware_datetime_in_either_mode(tm, token):
    manager = tm()
    clocked = Clocked(task_manager=manager, max_workers=1)
    at = datetime.datetime.now(UTC) + datetime.timedelta(seconds=0.5)
    handle = clocked.schedule_task(clocked.tick, at=at, args=(token,))
    handle.result(SOON)
    [ran] = seen(token)
    assert ran >= at.timestamp() - 0.05, (ran, at.timestamp())


def test_pause_and_resume_of_a_cron_schedule_say_whether_they_changed_it_in_either_mode(tm, token):
    manager = tm()
    clocked = Clocked(task_manager=manager, max_workers=1)
    handle = clocked.schedule_task(clocked.tick, cron="@hourly", args=(token,), name="hourly")
    assert handle.pause() and not handle.pause()
    assert handle.resume() and not handle.resume()
    assert handle.cancel()
