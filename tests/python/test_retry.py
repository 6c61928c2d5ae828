"""Retries (issue 26), in both modes through the ``mode`` fixture: a task
that raises runs again after a backoff, one handle across every attempt,
only the exception classes ``on=`` lists, a module's default, counted in
``stats()`` and told as an event; a task waiting to retry is pending and
can be cancelled; bad ``retry=`` arguments are typed errors at the call.

With a broker, the worker whose run failed schedules the next attempt in
Redis in the same step as it acknowledges the failed one (see
``src/broker/scripts.rs``, ACK), so any worker may run it.
"""

import time

import pytest

from taskmanager import DeadLettered, Module, RemoteError, Retry

from _util import SOON, note, seen, wait_until

QUICK = dict(backoff=0.02, max_backoff=0.08, jitter=0)


class Flaky(Module):
    """Fails the first ``failures`` calls of a token with ``kind``."""

    def flaky(self, token, failures, kind="ConnectionRefusedError"):
        note(token, "call")
        calls = seen(token).count("call")
        if calls <= failures:
            raise {"ConnectionRefusedError": ConnectionRefusedError, "ValueError": ValueError}[kind](
                f"failure {calls}"
            )
        return calls

    def slow_fail(self, token):
        note(token, "call")
        raise TimeoutError("down")


def calls(token):
    return seen(token).count("call")


def failure_text(mode, exc):
    return exc.message if mode == "redis" else str(exc)


def test_a_task_that_raises_is_retried_and_its_handle_gets_the_success(tm, mode, token):
    manager = tm()
    jobs = Flaky(task_manager=manager, max_workers=2)
    started = time.monotonic()
    handle = jobs.add_task(jobs.flaky, args=(token, 2), retry=Retry(3, **QUICK))
    assert handle.result(SOON) == 3
    # Waits of 20 ms and 40 ms (no jitter).
    assert time.monotonic() - started >= 0.06
    # With a broker the worker counts the run once it sent the result.
    assert wait_until(lambda: jobs.stats().completed == 1)
    stats = jobs.stats()
    assert (stats.completed, stats.failed, stats.retried) == (1, 0, 2)


def test_the_last_exception_settles_the_handle_once_the_retries_are_spent(tm, mode, token):
    manager = tm()
    jobs = Flaky(task_manager=manager)
    handle = jobs.add_task(jobs.flaky, args=(token, 99), retry=Retry(2, **QUICK))
    exc = handle.exception(SOON)
    assert failure_text(mode, exc) == "failure 3"
    assert wait_until(lambda: jobs.stats().failed == 1)
    time.sleep(0.1)
    assert calls(token) == 3, "no attempt after the last"
    stats = jobs.stats()
    assert (stats.failed, stats.retried) == (1, 2)


def test_only_the_exception_classes_listed_retry_subclasses_included(tm, mode, token):
    manager = tm()
    jobs = Flaky(task_manager=manager)
    # ConnectionRefusedError is a ConnectionError: retried.
    ok = jobs.add_task(jobs.flaky, args=(token, 1), retry=Retry(3, on=ConnectionError, **QUICK))
    assert ok.result(SOON) == 2
    other = token + "-value"
    from _util import SEEN

    SEEN[other] = []
    try:
        bad = jobs.add_task(jobs.flaky, args=(other, 5, "ValueError"), retry=Retry(3, on=(ConnectionError,), **QUICK))
        exc = bad.exception(SOON)
        assert failure_text(mode, exc) == "failure 1"
        assert calls(other) == 1, "a ValueError is not retried"
    finally:
        SEEN.pop(other, None)


def test_an_int_is_that_many_retries_and_a_module_default_applies(tm, mode, token):
    manager = tm()
    jobs = Flaky(task_manager=manager, retry=Retry(1, **QUICK))
    # The module's default: one retry.
    assert jobs.add_task(jobs.flaky, args=(token, 1)).result(SOON) == 2
    assert jobs.stats().retried == 1
    # retry=0 overrides it: no retry.
    exc = jobs.add_task(jobs.flaky, args=(token, 99), retry=0).exception(SOON)
    assert failure_text(mode, exc) == "failure 3"
    assert jobs.stats().retried == 1


def test_a_task_waiting_to_retry_is_pending_and_can_be_cancelled(tm, token):
    manager = tm()
    jobs = Flaky(task_manager=manager)
    handle = jobs.add_task(jobs.slow_fail, args=(token,), retry=Retry(3, backoff=60, jitter=0))
    assert wait_until(lambda: jobs.stats().retried == 1)
    # Pending again between attempts (the next attempt marks it running;
    # with a broker, the task waits in Redis's delayed set, claimed by no
    # worker).
    assert wait_until(lambda: not handle.running())
    assert handle.cancel()
    assert handle.cancelled()
    time.sleep(0.1)
    assert calls(token) == 1


def test_retry_is_refused_for_reoccurring_tasks_and_bad_values_name_the_argument(tm, mode, token):
    manager = tm()
    jobs = Flaky(task_manager=manager)
    with pytest.raises(ValueError, match="retry, result_ttl and ignore_result apply to one-shot tasks"):
        jobs.schedule_task(jobs.flaky, 1, args=(token, 0), reoccurring=True, retry=2)
    for value, error, text in [
        (True, TypeError, "retry must be an int"),
        ("3", TypeError, "retry must be an int"),
        (-1, ValueError, "retry must be from 0"),
    ]:
        with pytest.raises(error, match=text):
            jobs.add_task(jobs.flaky, args=(token, 0), retry=value)
    assert calls(token) == 0, "a refused submission runs nothing"


def test_retry_objects_check_their_arguments_and_compute_waits():
    retry = Retry(4, backoff=0.5, max_backoff=3, jitter=0.5, on=(ConnectionError, KeyError))
    assert (retry.retries, retry.backoff, retry.max_backoff, retry.jitter) == (4, 0.5, 3.0, 0.5)
    assert retry.on == ["builtins.ConnectionError", "builtins.KeyError"]
    # Doubling from the base up to the cap; the random share takes off up to half.
    assert [retry.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert retry.delay(2, 0.5) == 0.75
    assert repr(Retry()) == "Retry(retries=3, backoff=1.0, max_backoff=60.0, jitter=0.5)"
    for kwargs, error, text in [
        (dict(retries=1.5), TypeError, "retries must be an int"),
        (dict(retries=-2), ValueError, "retries must be from 0"),
        (dict(backoff=-1), ValueError, "backoff must be from 0"),
        (dict(backoff=2, max_backoff=1), ValueError, "max_backoff .* must be at least backoff"),
        (dict(jitter=2), ValueError, "jitter must be from 0 to 1"),
        (dict(jitter=float("nan")), ValueError, "jitter must be finite"),
        (dict(on=int), TypeError, "on must be an exception class"),
        (dict(on=(ValueError, "KeyError")), TypeError, "on must be an exception class"),
    ]:
        with pytest.raises(error, match=text):
            Retry(**kwargs)


def test_the_dict_form_of_the_spec_takes_retry(tm, mode, token):
    manager = tm()
    jobs = Flaky(task_manager=manager)
    handle = manager.add_task({"method": jobs.flaky, "args": (token, 1), "retry": Retry(1, **QUICK)})
    assert handle.result(SOON) == 2


@pytest.mark.parametrize("mode", ["redis"], indirect=True)
def test_with_a_broker_a_task_that_used_up_its_retries_may_go_to_the_dead_letter_set(tm, mode, token):
    manager = tm()
    jobs = Flaky(task_manager=manager)
    handle = jobs.add_task(jobs.flaky, args=(token, 99), retry=Retry(1, dead_letter=True, **QUICK))
    with pytest.raises(DeadLettered, match="retries used up: attempt 2 failed"):
        handle.result(SOON)
    [letter] = manager.dead_letters()
    kind, message, traceback = letter.error
    assert (kind, message) == ("ConnectionRefusedError", "failure 2")
    assert "Traceback" in traceback and "in flaky" in traceback
    assert Retry(1, dead_letter=True).dead_letter and not Retry(1).dead_letter
