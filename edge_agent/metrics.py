"""Prometheus metrics of the agent on a local port (``agent.metrics_port``), for node exporters and humans."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_COUNTERS = {"produced", "acked", "sent", "replayed", "reconnects", "dropped"}


def render(status: dict[str, Any]) -> str:
    """The text exposition format of the delivery counters, source states and health."""
    d = status["delivery"]
    dev = f'device="{status["device"]}"'
    lines = []
    for key in (
        "produced",
        "acked",
        "sent",
        "replayed",
        "reconnects",
        "buffered",
        "buffer_bytes",
        "oldest_unsent_s",
    ):
        kind = "counter" if key in _COUNTERS else "gauge"
        name = f"signalcraft_agent_{key}" + ("_total" if kind == "counter" else "")
        lines += [f"# TYPE {name} {kind}", f"{name}{{{dev}}} {d[key]}"]
    lines.append("# TYPE signalcraft_agent_dropped_total counter")
    for reason, n in d["dropped_by_reason"].items():
        lines.append(f'signalcraft_agent_dropped_total{{{dev},reason="{reason}"}} {n}')
    lines += [
        "# TYPE signalcraft_agent_connected gauge",
        f"signalcraft_agent_connected{{{dev}}} {int(d['connected'])}",
    ]
    lines.append("# TYPE signalcraft_agent_source_online gauge")
    for name, src in status["sources"].items():
        lines.append(
            f'signalcraft_agent_source_online{{{dev},source="{name}"}} {int(src["state"] == "online")}'
        )
    lines += [
        "# TYPE signalcraft_agent_loop_crashes_total counter",
        f"signalcraft_agent_loop_crashes_total{{{dev}}} {status['loop']['crashes']}",
    ]
    score = status["last"].get("score")
    if score is not None:
        lines += ["# TYPE signalcraft_agent_score gauge", f"signalcraft_agent_score{{{dev}}} {score}"]
    return "\n".join(lines) + "\n"


class MetricsServer:
    def __init__(self, port: int, status: Callable[[], dict[str, Any]]) -> None:
        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = render(status()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # scrapes are not news
                pass

        # Loopback only: the numbers are for the box's own exporter, not for the shop's network.
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
