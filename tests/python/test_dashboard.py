"""``python -m taskmanager dashboard``, clicked through in a real headless
browser (Debian's Chromium, driven by Playwright's Python package; no
browser is downloaded): against a real redis-server and real worker
processes, every panel shows what Redis holds and every button does what
it says, checked from the API side too. The screenshots in README come
from here (``TASKMANAGER_SCREENSHOTS=docs``).

Without Chromium the browser tests fail (never skip), saying what to
install. Every process a test starts is killed in a ``finally``.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from taskmanager import TaskManager

from _util import HERE, Cluster

CHROMIUM = os.environ.get("TASKMANAGER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("TASKMANAGER_SCREENSHOTS", "")) if os.environ.get("TASKMANAGER_SCREENSHOTS") else None
WAIT = 20_000  # ms: the page polls every second; a loaded machine may lag


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set TASKMANAGER_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
        )
        try:
            yield b
        finally:
            b.close()


def start_dashboard(c, *args):
    """A dashboard-command process of cluster ``c``, and its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskmanager", "dashboard", "_worker_app:manager", "--port", "0", *args],
        env=c.env, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    c.procs.append(proc)
    line = proc.stdout.readline()
    found = re.search(r"at (http://\S+)", line)
    assert found, f"no URL in {line!r}: {proc.stdout.read() if proc.poll() is not None else ''}"
    return proc, found.group(1)


def api(url, path, body=None, token=None, **headers):
    request = urllib.request.Request(url.rstrip("/") + path, method="GET" if body is None else "POST")
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for k, v in headers.items():
        request.add_header(k.replace("_", "-"), v)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def shot(page, name):
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / name), full_page=True)


def test_the_dashboard_shows_the_cluster_and_its_buttons_act(redis_server, tmp_path, browser):
    # A short lease: a killed worker shows as dead within a second; names
    # no worker can run are dead-lettered after one second.
    # The submitter has the task `newer`; the workers do not.
    c = Cluster(redis_server.url, tmp_path, TM_LEASE=1, TM_UNRUNNABLE_AFTER=1, TM_NEWER=1)
    try:
        workers = [c.worker(TM_NEWER=""), c.worker(TM_NEWER="")]
        app = c.submitter()
        done = [app.jobs.add_task(app.jobs.slow, args=[0.0, f"d{i}"]) for i in range(3)]
        for h in done:
            assert h.result(timeout=20)["tag"].startswith("d")
        app.jobs.schedule_task(app.jobs.slow, 3600, args=[0.0, "hourly"], reoccurring=True, name="hourly")
        _, url = start_dashboard(c)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)

        # Workers: both alive; then one killed shows dead.
        expect(page.locator("#workers .badge.alive")).to_have_count(2, timeout=WAIT)
        expect(page.locator("#mode")).to_have_text("Redis: the whole cluster")
        module_row = page.locator("#modules tr[data-module='_worker_app:Jobs']")
        expect(module_row.locator("td").nth(3)).to_have_text("3", timeout=WAIT)  # succeeded, cluster-wide
        slow = page.locator("#outcomes tr[data-outcome='_worker_app:Jobs/slow']")
        expect(slow.locator("td").nth(1)).to_have_text("3")
        expect(page.locator("#rates-now")).to_contain_text("/ s succeeded")

        # Schedules: pause and resume by button, seen by the cluster too.
        row = page.locator("tr[data-schedule='hourly']")
        expect(row.locator(".badge")).to_have_text("active", timeout=WAIT)
        row.get_by_role("button", name="Pause").click()
        expect(row.locator(".badge")).to_have_text("paused", timeout=WAIT)
        assert [s.paused for s in app.manager.cluster_stats().schedules if s.key == "hourly"] == [True]
        row.get_by_role("button", name="Resume").click()
        expect(row.locator(".badge")).to_have_text("active", timeout=WAIT)
        assert [s.paused for s in app.manager.cluster_stats().schedules if s.key == "hourly"] == [False]

        # Running in the cluster: a task a worker holds, where and how long.
        long = app.jobs.add_task(app.jobs.slow, args=[30.0, "long"])
        c.wait_lines("start", 1 + 3)  # the three d-tasks, then this one
        running = page.locator(f"#claimed tr[data-claimed='{long.task_id}']")
        expect(running).to_contain_text("Jobs.slow", timeout=WAIT)
        held_by = running.locator("td").nth(3).inner_text()
        assert held_by in {w.id for w in app.manager.cluster_stats().workers}
        assert [t.id for t in app.manager.claimed_tasks()] == [long.task_id]

        # A task by id: a finished one's result.
        page.fill("#task-id", done[0].task_id)
        page.click("#find button")
        expect(page.locator("#found")).to_contain_text('"state": "finished"', timeout=WAIT)
        expect(page.locator("#found")).to_contain_text('"tag": "d0"')
        page.fill("#task-id", "no-such-task")
        page.click("#find button")
        expect(page.locator("#found")).to_contain_text('"state": "unknown"', timeout=WAIT)

        # Dead letters: a task of a name no worker has is set apart after
        # a second; requeue it by button (no worker has it still: it comes
        # back), then purge.
        # A burst of work, for the charts of the screenshot (and the counts).
        burst = [app.jobs.add_task(app.jobs.slow, args=[0.05, f"b{i}"]) for i in range(60)]
        for h in burst:
            h.result(timeout=30)
        expect(slow.locator("td").nth(1)).to_have_text("63", timeout=WAIT)
        stuck = app.manager.add_task({"method": app.newer, "args": ["x"]})
        dead_row = page.locator(f"tr[data-dead='{stuck.task_id}']")
        expect(dead_row).to_be_visible(timeout=WAIT)
        expect(page.locator("#t-dead")).to_have_text("1", timeout=WAIT)
        shot(page, "dashboard.png")
        dead_row.get_by_role("button", name="Requeue").click()
        expect(dead_row).to_have_count(0, timeout=WAIT)
        expect(page.locator(f"tr[data-dead='{stuck.task_id}']")).to_be_visible(timeout=WAIT)  # unrunnable again
        page.once("dialog", lambda d: d.accept())
        page.click("#purge")
        expect(page.locator("#dead-letters .empty")).to_have_text("the dead-letter set is empty", timeout=WAIT)
        assert app.manager.dead_letters() == []

        workers[0].kill()
        workers[0].wait(10)
        expect(page.locator("#workers .badge.dead")).to_have_count(1, timeout=WAIT)
        expect(page.locator("#workers .badge.alive")).to_have_count(1)
        shot(page, "dashboard-dead-worker.png")
        page.close()
    finally:
        c.close()


def test_a_token_is_asked_of_every_api_call_and_the_page_passes_it(redis_server, tmp_path, browser):
    c = Cluster(redis_server.url, tmp_path)
    try:
        _, url = start_dashboard(c, "--token", "s3cret")
        with pytest.raises(urllib.error.HTTPError) as refused:
            api(url, "/api/overview")
        assert refused.value.code == 401
        assert api(url, "/api/overview", token="s3cret")["mode"] == "redis"
        page = browser.new_page()
        page.goto(url)  # no token: the page says why it shows nothing
        expect(page.locator("#banner")).to_contain_text("bearer token", timeout=WAIT)
        page.goto(url + "#token=s3cret")
        expect(page.locator("#mode")).to_have_text("Redis: the whole cluster", timeout=WAIT)
        assert "s3cret" not in page.url, "the token leaves the address bar"
        page.close()
    finally:
        c.close()


def test_actions_need_the_header_and_a_host_of_its_own(redis_server, tmp_path):
    c = Cluster(redis_server.url, tmp_path)
    try:
        _, url = start_dashboard(c)
        app = c.submitter()
        app.jobs.schedule_task(app.jobs.slow, 3600, args=[0.0, "h"], reoccurring=True, name="h")
        # A form post from another page cannot set the header: refused.
        with pytest.raises(urllib.error.HTTPError) as forged:
            api(url, "/api/schedules/h/pause", {})
        assert forged.value.code == 403
        assert [s.paused for s in app.manager.cluster_stats().schedules] == [False]
        assert api(url, "/api/schedules/h/pause", {}, X_Taskmanager="1")["changed"] is True
        assert [s.paused for s in app.manager.cluster_stats().schedules] == [True]
        # A DNS-rebinding page reaches it under another name: refused.
        with pytest.raises(urllib.error.HTTPError) as rebound:
            api(url, "/api/overview", Host="evil.example")
        assert rebound.value.code == 403
    finally:
        c.close()


def test_off_loopback_without_a_token_is_refused(redis_server, tmp_path):
    c = Cluster(redis_server.url, tmp_path)
    env = {k: v for k, v in c.env.items() if k != "TASKMANAGER_DASHBOARD_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "taskmanager", "dashboard", "_worker_app:manager", "--host", "0.0.0.0", "--port", "0"],
        env=env, cwd=HERE, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "needs a token" in done.stderr


def test_in_process_it_shows_this_process_and_says_so(browser):
    manager = TaskManager()
    manager.start_thread()
    try:
        from taskmanager import Module

        class Polls(Module):
            def poll(self):
                return 1

            def hold(self, gate):
                gate.wait(30)

        polls = Polls(task_manager=manager, max_workers=2)
        assert polls.add_task(polls.poll).result(5) == 1
        gate = threading.Event()
        held = polls.add_task(polls.hold, args=(gate,))
        ticks = polls.schedule_task(polls.poll, 60, reoccurring=True, name="every-minute")
        server = manager.serve_dashboard()
        try:
            page = browser.new_page()
            page.goto(server.url)
            expect(page.locator("#mode")).to_have_text("in-process: this process only", timeout=WAIT)
            row = page.locator("#modules tr[data-module='Polls']")
            expect(row.locator("td").nth(4)).to_have_text("1", timeout=WAIT)  # completed
            expect(page.locator(f"#running tr[data-running='{held.id}']")).to_contain_text("Polls.hold")
            expect(page.locator(f"#tasks tr[data-task='{ticks.id}']")).to_contain_text("every-minute")
            expect(page.locator("#schedules .empty")).to_contain_text("need a broker")
            gate.set()
            expect(page.locator("#running .empty")).to_have_text("nothing running", timeout=WAIT)
            page.close()
        finally:
            server.close()
    finally:
        manager.shutdown()
