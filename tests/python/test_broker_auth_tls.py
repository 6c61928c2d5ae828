"""AUTH and TLS through the broker URL, against a real redis-server: a
``requirepass`` password, an ACL user and ``rediss://`` with
``broker_ca_file`` (a CA the harness makes with the openssl CLI) each carry
named, delayed and recurring tasks; a wrong password or an untrusted
certificate makes the submission raise ConnectionError promptly, saying
which; an unusable CA file is refused when the manager is made."""

import threading
import time
import uuid
from pathlib import Path

import pytest

from taskmanager import Module, TaskManager

PASSWORD = "s3cret"


class Jobs(Module):
    ticks = 0
    ticked = threading.Event()

    def double(self, x: int) -> int:
        return 2 * x

    def tick(self) -> None:
        type(self).ticks += 1
        if type(self).ticks >= 3:
            type(self).ticked.set()


def runs_named_tasks(url, **options):
    manager = TaskManager(broker=url, broker_prefix=uuid.uuid4().hex, broker_timeout=2, **options)
    jobs = Jobs(task_manager=manager, max_workers=2)
    Jobs.ticks = 0
    Jobs.ticked = threading.Event()
    manager.start_thread()
    try:
        handles = [jobs.add_task(jobs.double, args=[i]) for i in range(10)]
        assert [h.result(timeout=10) for h in handles] == [2 * i for i in range(10)]
        assert jobs.schedule_task(jobs.double, 0.2, args=[21]).result(timeout=10) == 42
        schedule = jobs.schedule_task(jobs.tick, 0.1, reoccurring=True)
        assert Jobs.ticked.wait(20), f"the recurring task ticked {Jobs.ticks} times in 20 s"
        schedule.cancel()
    finally:
        manager.shutdown()


def submit_error(url, **options):
    """The submission's ConnectionError message; it must come within the
    broker timeout (2 s) and a margin."""
    manager = TaskManager(broker=url, broker_prefix=uuid.uuid4().hex, broker_timeout=2, **options)
    jobs = Jobs(task_manager=manager)
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionError) as info:
            jobs.add_task(jobs.double, args=[1])
    finally:
        manager.shutdown()
    assert time.monotonic() - started < 5
    return str(info.value)


def test_a_password_in_the_url_carries_named_delayed_and_recurring_tasks(redis_server_factory):
    server = redis_server_factory("--requirepass", PASSWORD)
    runs_named_tasks(f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0")


def test_an_acl_user_in_the_url_carries_named_tasks(redis_server_factory):
    server = redis_server_factory("--requirepass", PASSWORD)
    # Its password is not the default user's: only an AUTH naming the user gets in.
    server.command("ACL", "SETUSER", "worker", "on", ">w0rker pw", "~*", "&*", "+@all")
    runs_named_tasks(f"redis://worker:w0rker%20pw@127.0.0.1:{server.port}/0")


def test_a_wrong_or_missing_password_raises_connection_error_saying_so(redis_server_factory):
    server = redis_server_factory("--requirepass", PASSWORD)
    wrong = submit_error(f"redis://:nope@127.0.0.1:{server.port}/0")
    assert "refused the broker URL's user or password" in wrong
    assert "requires authentication" in submit_error(server.url)


def test_a_rediss_url_with_the_ca_file_carries_named_delayed_and_recurring_tasks(redis_server_factory):
    server = redis_server_factory("--requirepass", PASSWORD, tls=True)
    url = server.tls_url.replace("rediss://", f"rediss://:{PASSWORD}@")
    runs_named_tasks(url, broker_ca_file=Path(server.ca_file))


def test_without_the_ca_file_the_certificate_is_refused_saying_so(redis_server_factory):
    server = redis_server_factory(tls=True)
    message = submit_error(server.tls_url)
    assert "not trusted" in message and "broker_ca_file" in message, message


def test_an_unusable_ca_file_is_refused_when_the_manager_is_made(tmp_path):
    with pytest.raises(ValueError, match="cannot read the CA certificate file"):
        TaskManager(broker="rediss://127.0.0.1:6380/0", broker_ca_file=tmp_path / "missing.pem")
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="no PEM certificate"):
        TaskManager(broker="rediss://127.0.0.1:6380/0", broker_ca_file=str(empty))
    with pytest.raises(TypeError, match="broker_ca_file must be a path"):
        TaskManager(broker="rediss://127.0.0.1:6380/0", broker_ca_file=42)
    with pytest.raises(ValueError, match="need broker"):
        TaskManager(broker_ca_file=str(empty))
