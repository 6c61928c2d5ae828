"""Prometheus metrics of a :class:`TaskManager`: served over HTTP
(:meth:`TaskManager.serve_metrics`, the worker's ``--metrics-port``), or
added to an application's own ``prometheus_client`` registry
(:class:`MetricsCollector`). The figures are kept in the native core
(``bindings/python/src/prometheus.rs``); this file only carries the text."""

from __future__ import annotations

import hmac
import http.server
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

if TYPE_CHECKING:
    from ._api import TaskManager

#: Prometheus's text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Server(http.server.ThreadingHTTPServer):
    """What the handler needs: the text and the expected credentials."""

    render: Callable[[], str]
    expected: Optional[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404, "only /metrics is served here")
            return
        expected = self.server.expected
        given = self.headers.get("Authorization") or ""
        if expected is not None and not hmac.compare_digest(given.encode(), expected.encode()):
            self.send_error(401, "a bearer token is required")
            return
        body = self.server.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not news


class MetricsServer:
    """An HTTP server in a daemon thread answering ``GET /metrics`` with
    its manager's :meth:`~TaskManager.metrics_text` (any other path: 404).
    :meth:`close` stops it; so does leaving a ``with`` block."""

    def __init__(self, manager: "TaskManager", host: str, port: int, token: Optional[str] = None) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.render = manager.metrics_text
        self._server.expected = None if token is None else f"Bearer {token}"
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="taskmanager-metrics", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen, with ``port=0``)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Where to scrape it: ``http://host:port/metrics``."""
        host = self._server.server_address[0]
        if isinstance(host, bytes):  # an AF_UNIX address; not made here
            host = host.decode()
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stops serving and closes the socket; waits for the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MetricsServer {self.url}>"


class MetricsCollector:
    """A ``prometheus_client`` collector of a manager's metrics, for an
    application that serves its own: ``REGISTRY.register(MetricsCollector(manager))``.
    Needs ``prometheus_client`` (not a dependency of taskmanager)."""

    def __init__(self, manager: "TaskManager") -> None:
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("MetricsCollector needs prometheus_client: pip install prometheus-client") from e
        self._parse = text_string_to_metric_families
        self._manager = manager
        manager.enable_metrics()

    def collect(self) -> Iterator[Any]:
        """The metric families, read now (``prometheus_client`` calls it
        at each scrape)."""
        return iter(list(self._parse(self._manager.metrics_text())))
