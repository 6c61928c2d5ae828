"""The Redis test harness itself (redis_harness.py and the ``redis_server``
fixture): a real ``redis-server`` on a free loopback port, without
persistence, that answers RESP commands, restarts on the same port, and
leaves no process or directory behind, also when the test fails. Without
``redis-server`` these fail with the install hint."""

import os
import subprocess
import sys
import textwrap

import pytest

from redis_harness import RedisReplyError, RedisServer, RedisServerError, RedisServerMissing, start_for_test

HERE = os.path.dirname(os.path.abspath(__file__))
AOF = ("--appendonly", "yes", "--appendfsync", "always")


def alive(pid):
    return os.path.exists(f"/proc/{pid}")


def test_a_server_answers_commands_on_its_loopback_port(redis_server):
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.port != 6379, "a free port, not the default"
    assert redis_server.command("PING") == "PONG"
    assert redis_server.command("SET", "greeting", "hello world") == "OK"
    assert redis_server.command("GET", "greeting") == "hello world"
    assert redis_server.command("GET", "missing") == "(nil)"
    assert redis_server.command("SET", "empty", "") == "OK"
    assert redis_server.command("GET", "empty") == ""
    assert redis_server.command("DBSIZE") == "2"
    assert redis_server.command("RPUSH", "list", "a", "b", 3) == "3"
    assert redis_server.command("LRANGE", "list", 0, -1) == "a\nb\n3\n"
    assert redis_server.command("FLUSHALL") == "OK"
    assert redis_server.command("DBSIZE") == "0"
    assert "Ready to accept connections" in redis_server.log()


def test_two_servers_get_two_ports_and_separate_data(redis_server_factory):
    a, b = redis_server_factory(), redis_server_factory()
    assert a.port != b.port and a.dir != b.dir
    a.command("SET", "k", "a")
    assert b.command("GET", "k") == "(nil)"


def test_nothing_is_persisted_by_default(redis_server):
    assert redis_server.command("CONFIG", "GET", "save") == "save\n\n"
    assert redis_server.command("CONFIG", "GET", "appendonly") == "appendonly\nno\n"
    assert redis_server.command("CONFIG", "GET", "bind") == "bind\n127.0.0.1\n"
    redis_server.command("SET", "k", "v")
    redis_server.restart()
    assert redis_server.command("DBSIZE") == "0", "a restart without AOF starts empty"
    assert os.listdir(redis_server.dir) == ["redis.log"], "no RDB or AOF file written"


def test_a_restart_with_aof_keeps_the_port_and_the_data(redis_server_factory):
    server = redis_server_factory(*AOF)
    assert server.command("CONFIG", "GET", "appendonly") == "appendonly\nyes\n"
    port, url, first = server.port, server.url, server.pid
    server.command("SET", "k", "v")
    server.command("INCRBY", "n", "41")
    server.restart()
    assert server.pid != first, "a new process"
    assert not alive(first), "the old process is gone"
    assert (server.port, server.url) == (port, url)
    assert server.command("GET", "k") == "v"
    assert server.command("INCR", "n") == "42"


def test_a_killed_server_is_gone_until_restarted(redis_server_factory):
    server = redis_server_factory(*AOF)
    server.command("SET", "k", "v")
    pid = server.pid
    server.kill()
    assert not alive(pid), "SIGKILLed and reaped"
    assert server.pid is None
    with pytest.raises(RedisServerError, match="last lines of"):
        server.command("PING")
    server.restart()
    assert server.command("GET", "k") == "v", "fsync always: the write survived SIGKILL"


def test_an_error_reply_raises(redis_server):
    with pytest.raises(RedisReplyError, match="unknown command"):
        redis_server.command("NOSUCHCOMMAND")
    assert redis_server.command("PING") == "PONG"


def test_stop_leaves_no_process_and_no_directory():
    with RedisServer() as server:
        pid, directory = server.pid, server.dir
        assert alive(pid) and os.path.isdir(directory)
    assert not alive(pid), f"process {pid} still exists"
    assert not os.path.exists(directory)
    server.stop()  # idempotent


def test_an_exception_inside_with_stops_the_server():
    with pytest.raises(ZeroDivisionError):
        with RedisServer(*AOF) as server:
            server.restart()
            pid, directory = server.pid, server.dir
            1 / 0
    assert not alive(pid)
    assert not os.path.exists(directory)


def test_a_missing_binary_raises_the_install_hint(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RedisServerMissing, match="apt-get install redis-server"):
        RedisServer()
    with pytest.raises(pytest.fail.Exception, match="apt-get install redis-server"):
        start_for_test()


def _run_pytest(tmp_path, source, path=None):
    """Runs ``source`` as a test file in a child pytest that has this
    directory's conftest (so its ``redis_server`` fixture)."""
    test = tmp_path / "test_child.py"
    test.write_text(textwrap.dedent(source))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest", str(test)],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env=env,
        timeout=60,
    )


def test_the_fixture_stops_the_server_of_a_failing_test(tmp_path):
    record = tmp_path / "record"
    proc = _run_pytest(
        tmp_path,
        f"""
        def test_fails(redis_server):
            redis_server.restart()
            with open({str(record)!r}, "w") as f:
                f.write(f"{{redis_server.pid}} {{redis_server.dir}}")
            assert False, "the test fails while its server runs"
        """,
    )
    assert "1 failed" in proc.stdout, proc.stdout + proc.stderr
    pid, directory = record.read_text().split(" ", 1)
    assert not alive(int(pid)), f"process {pid} outlived the failing test"
    assert not os.path.exists(directory)


def test_the_fixture_fails_without_the_binary_never_skips(tmp_path):
    proc = _run_pytest(tmp_path, "def test_needs_redis(redis_server):\n    pass\n", path="/nonexistent")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 error" in out or "1 failed" in out, out
    assert "skipped" not in out, out
    assert "apt-get install redis-server" in out, out
