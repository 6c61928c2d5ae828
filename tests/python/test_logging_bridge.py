"""The core's log records reach Python's ``logging`` (issue 25, item 5):
under the ``taskmanager`` logger tree, named after the Rust module, at
their levels, only as verbose as the ``taskmanager`` loggers ask, and
events only once (on ``taskmanager.events``)."""

import logging
import socket
import time
import uuid

from taskmanager import ShutdownTimedOut, TaskManager

from _util import SOON, wait_until


def add(a, b):
    return a + b


def closed_port():
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unreachable_broker():
    """A started manager whose broker is a closed loopback port, with a key
    prefix of its own that its claimer's warnings name."""
    prefix = uuid.uuid4().hex
    manager = TaskManager(broker=f"redis://127.0.0.1:{closed_port()}", broker_prefix=prefix, broker_timeout=0.5)
    # A registered task: the process claims (a claimer runs for its module).
    manager.task(add)
    manager.start_thread()
    return manager, prefix


def stop(manager):
    """Shuts down a manager whose broker was never reachable. Its claimer's
    drain waits for a connection even when it holds nothing, so a plain
    shutdown() would wait for the broker forever; a bounded one gives up
    and ends the drain."""
    try:
        manager.shutdown(timeout=1)
    except ShutdownTimedOut:
        pass
    # Its threads end soon after (the scheduler's last attempt to leave the
    # cluster's list fails and warns): done before the next test counts
    # records.
    assert manager._core.await_termination(10), "its threads did not end"


def is_outage_warning(record, prefix):
    return (
        record.name.startswith("taskmanager.broker.")
        and record.levelno == logging.WARNING
        and prefix in record.getMessage()
        and "unreachable" in record.getMessage()
    )


def test_a_broker_outage_is_a_warning_on_a_taskmanager_logger(caplog):
    caplog.set_level(logging.WARNING, logger="taskmanager")
    manager, prefix = unreachable_broker()
    try:
        assert wait_until(lambda: any(is_outage_warning(r, prefix) for r in caplog.records))
    finally:
        stop(manager)
    record = next(r for r in caplog.records if is_outage_warning(r, prefix))
    assert record.name == "taskmanager.broker.claimer"
    # The logger's name says where it comes from: the core's prefix is cut.
    assert record.getMessage().startswith("broker unreachable for module default (")
    # Made where the Rust code logged it, not where logging was called.
    assert record.pathname.endswith("claimer.rs") and record.lineno > 0


def test_records_below_the_loggers_level_are_not_even_sent(caplog, monkeypatch):
    # The bridge asks logging for a record's logger by name: a spy there
    # sees every record the core sent, whatever Python's levels then drop.
    asked = []
    get_logger = logging.getLogger

    def spy(name=None):
        asked.append(name)
        return get_logger(name)

    monkeypatch.setattr(logging, "getLogger", spy)
    caplog.set_level(logging.ERROR, logger="taskmanager")
    manager, _prefix = unreachable_broker()
    try:
        time.sleep(1.5)  # the claimer retries every 0.1-0.4 s meanwhile
        assert [n for n in asked if n and n.startswith("taskmanager.broker")] == []
        # A child logger more verbose than `taskmanager` counts too, from
        # the next TaskManager made: then the same claimer's warnings come.
        caplog.set_level(logging.WARNING, logger="taskmanager.broker")
        TaskManager().shutdown()
        assert wait_until(lambda: "taskmanager.broker.claimer" in asked)
        assert wait_until(lambda: any(r.name == "taskmanager.broker.claimer" for r in caplog.records))
    finally:
        stop(manager)


def test_info_from_the_core_arrives_at_info(caplog):
    caplog.set_level(logging.INFO, logger="taskmanager")
    with TaskManager() as manager:
        ticks = manager.schedule_task({"method": print, "delay": 3600, "reoccurring": True, "name": "poll"})
        ticks.set_interval(7200)

        def logged():
            return [r for r in caplog.records if r.name == "taskmanager.handle" and "interval now" in r.getMessage()]

        assert wait_until(logged)
        assert logged()[0].levelno == logging.INFO and "recurring task poll" in logged()[0].getMessage()
        ticks.cancel()


def test_debug_from_the_core_arrives_at_debug(caplog, redis_server):
    # The result listener tells at DEBUG the channel it subscribed to.
    caplog.set_level(logging.DEBUG, logger="taskmanager")
    manager = TaskManager(broker=redis_server.url, broker_prefix=uuid.uuid4().hex, broker_timeout=2)
    manager.task(add)
    manager.start_thread()
    try:
        assert manager.add_task({"method": add, "args": (2, 3)}).result(timeout=10) == 5

        def logged():
            return [r for r in caplog.records if r.name == "taskmanager.broker.listener" and "subscribed to" in r.getMessage()]

        assert wait_until(logged)
        assert logged()[0].levelno == logging.DEBUG
    finally:
        manager.shutdown(timeout=SOON)


def test_events_are_logged_once(caplog):
    # Both the bridge (taskmanager at DEBUG) and the manager's own event
    # path (taskmanager.events at DEBUG) would log a finished run.
    caplog.set_level(logging.DEBUG, logger="taskmanager")
    name = f"once-{uuid.uuid4().hex}"
    with TaskManager() as manager:
        manager.add_task({"method": add, "args": (1, 2), "name": name}).result(timeout=SOON)

        def finished():
            return [r for r in caplog.records if name in r.getMessage() and "finished" in r.getMessage()]

        assert wait_until(finished)
        time.sleep(0.5)  # a second copy, through the bridge's thread, would be here by now
    assert [r.name for r in finished()] == ["taskmanager.events"]
