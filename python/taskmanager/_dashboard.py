"""``python -m taskmanager dashboard MODULE:ATTRIBUTE``: a live web page of
a manager and its cluster (workers, modules, queues and rates, schedules
with pause/resume, dead letters with requeue/purge, a task by id).

One page (``dashboard.html``, beside this file: no build step, no
dependency) that polls the JSON API below once a second. Served by the
standard library's HTTP server, on loopback unless told otherwise.

Security, since the page can act (pause schedules, purge dead letters):

- A host other than loopback needs a token (``--token`` or
  ``TASKMANAGER_DASHBOARD_TOKEN``): never open by accident. With a token,
  every API call needs ``Authorization: Bearer <token>`` (the page takes it
  from the address's ``#token=...`` and keeps it in the tab).
- Actions are ``POST`` with a JSON body and the header
  ``X-Taskmanager: 1``: a page of another origin cannot send them without
  a CORS preflight, which is never answered.
- The ``Host`` header must name the address it listens on (a loopback name
  on loopback): a DNS-rebinding page cannot read the API.

API: ``GET /api/overview``, ``GET /api/tasks/<id>``,
``POST /api/schedules/<key>/{pause,resume,remove}``,
``POST /api/dead-letters/requeue`` (``{"ids": [...]}`` or
``{"all": true}``), ``POST /api/dead-letters/purge``.
"""

from __future__ import annotations

import dataclasses
import hmac
import http.server
import ipaddress
import json
import threading
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ._status import json_value, task_fields
from ._types import Stats

if TYPE_CHECKING:
    from ._api import TaskManager

PAGE = Path(__file__).with_name("dashboard.html")
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name) is this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def overview(manager: "TaskManager", dead_letters: int = 20) -> Dict[str, Any]:
    """What the page shows, read now: this process's stats and tasks, and
    with a broker the cluster's (workers, modules, schedules, dead
    letters), each as plain JSON values."""
    view: Dict[str, Any] = {
        "time": time.time(),
        "mode": "inprocess" if manager._broker is None else "redis",
        "local": {
            "stats": dataclasses.asdict(Stats(*manager._core.stats())),
            "modules": [
                {"name": m._tm_name, "max_workers": m.max_workers, **dataclasses.asdict(m.stats())}
                for m in manager._live_modules()
            ],
            "tasks": [dataclasses.asdict(t) for t in manager.get_tasks()],
            "running": [{"id": i, "name": n} for i, n in manager._core.running_tasks()],
        },
    }
    if manager._broker is not None:
        cluster = manager.cluster_stats()
        view["cluster"] = dataclasses.asdict(cluster)
        view["dead_letters"] = [dataclasses.asdict(d) for d in manager.dead_letters(dead_letters)]
        view["claimed"] = [dataclasses.asdict(t) for t in manager.claimed_tasks(50)]
    return view


def task_view(manager: "TaskManager", task_id: str) -> Tuple[int, Dict[str, Any]]:
    """A task by its id, as ``tasks show`` finds it (404 if Redis holds
    nothing of it)."""
    if manager._broker is None:
        return 404, {"error": "tasks are looked up by id with a broker only (an in-process task's id is its handle's)"}
    found = task_fields(manager, task_id)
    return (404, {"id": task_id, "state": "unknown"}) if found is None else (200, found)


class _Server(http.server.ThreadingHTTPServer):
    manager: "TaskManager"
    token: Optional[str]
    hosts: List[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one request a second from every open page is not news

    def _send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, value: Any) -> None:
        self._send(code, json.dumps(value, default=json_value).encode(), "application/json")

    def _allowed(self) -> bool:
        """The Host check (every request), then the token (API calls)."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in self.server.hosts:
            self._json(403, {"error": f"unexpected Host {host!r}"})
            return False
        if self.path.startswith("/api/") and self.server.token is not None:
            given = (self.headers.get("Authorization") or "").encode()
            if not hmac.compare_digest(given, f"Bearer {self.server.token}".encode()):
                self._json(401, {"error": "a bearer token is required"})
                return False
        return True

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if not self._allowed():
            return
        path = urllib.parse.urlparse(self.path).path
        manager = self.server.manager
        try:
            if path in ("/", "/index.html"):
                self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
            elif path == "/api/overview":
                self._json(200, overview(manager))
            elif path.startswith("/api/tasks/"):
                self._json(*task_view(manager, urllib.parse.unquote(path[len("/api/tasks/"):])))
            else:
                self._json(404, {"error": f"no such page: {path}"})
        except ConnectionError as e:
            self._json(503, {"error": f"Redis cannot be read: {e}"})

    def do_POST(self) -> None:  # noqa: N802
        if not self._allowed():
            return
        if self.headers.get("X-Taskmanager") != "1":
            self._json(403, {"error": "actions need the header X-Taskmanager: 1"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        except ValueError:
            self._json(400, {"error": "the body must be JSON"})
            return
        path = urllib.parse.urlparse(self.path).path
        manager = self.server.manager
        if manager._broker is None:
            self._json(404, {"error": "actions need a TaskManager with a broker"})
            return
        try:
            self._json(*self._act(manager, path, body))
        except ConnectionError as e:
            self._json(503, {"error": f"Redis cannot be reached: {e}"})

    @staticmethod
    def _act(manager: "TaskManager", path: str, body: Dict[str, Any]) -> Tuple[int, Dict[str, Any]]:
        parts = [urllib.parse.unquote(p) for p in path.split("/")]
        if len(parts) == 5 and parts[:3] == ["", "api", "schedules"] and parts[4] in ("pause", "resume", "remove"):
            schedule = manager.shared_schedule(parts[3])
            verb = parts[4]
            changed = {"pause": schedule.pause, "resume": schedule.resume, "remove": schedule.cancel}[verb]()
            return 200, {"key": parts[3], "action": verb, "changed": changed}
        if path == "/api/dead-letters/requeue":
            if body.get("all") is True:
                return 200, {"requeued": manager.requeue_dead_letters(all=True)}
            ids = body.get("ids")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                return 400, {"error": 'give {"ids": [...]} or {"all": true}'}
            return 200, {"requeued": manager.requeue_dead_letters(ids)}
        if path == "/api/dead-letters/purge":
            return 200, {"purged": manager.purge_dead_letters()}
        return 404, {"error": f"no such action: {path}"}


class Dashboard:
    """The dashboard's HTTP server, in a daemon thread (``url``,
    ``close()``); see the module docs."""

    def __init__(self, manager: "TaskManager", host: str = "127.0.0.1", port: int = 0,
                 token: Optional[str] = None) -> None:
        if not is_loopback(host) and not token:
            raise ValueError(
                f"the dashboard on {host} (not loopback) needs a token (--token, or TASKMANAGER_DASHBOARD_TOKEN): "
                "it can pause schedules and purge dead letters"
            )
        self._server = _Server((host, port), _Handler)
        self._server.manager = manager
        self._server.token = token or None
        self._server.hosts = sorted(LOOPBACK_NAMES | {host}) if is_loopback(host) else [host]
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="taskmanager-dashboard", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        shown = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{shown}:{port}/"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
