"""The control socket: how the technician's ``signalcraft-agent`` asks the running agent what it sees.

A Unix stream socket, by default ``$RUNTIME_DIRECTORY/agent.sock`` under systemd (``/run/signalcraft``)
and ``<state_dir>/agent.sock`` otherwise; ``agent.control_socket`` overrides both. The socket is mode
0660 and the unit's runtime directory 0750, so only the agent's user and members of its group (the
technicians) can connect: the file system is the access control, there are no keys to leak. Every
request is logged with the peer's uid (SO_PEERCRED), so a recalibration can be traced to a person.

One JSON object per line in each direction; no pickles, nothing executable, requests larger than
64 KiB and clients that say nothing for a few seconds are dropped. Requests: ``{"cmd": "status"}``,
``{"cmd": "recalibrate"}`` and the others of :mod:`edge_agent.control_commands`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], dict[str, Any]]
MAX_REQUEST = 65536
CLIENT_TIMEOUT_S = 5.0
# Where the packaged unit's RuntimeDirectory= puts the socket; the CLI looks there when run by a person.
SERVICE_SOCKET = Path("/run/signalcraft/agent.sock")


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket (Linux), for the log."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    return struct.unpack("3i", creds)[1]


class ControlServer:
    def __init__(self, path: Path, handlers: dict[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        server = self

        class _Request(socketserver.StreamRequestHandler):
            timeout = CLIENT_TIMEOUT_S  # a client that connects and says nothing must not hold a thread

            def handle(self) -> None:
                try:
                    line = self.rfile.readline(MAX_REQUEST + 1)
                except TimeoutError:
                    return
                reply = server.dispatch(line, peer_uid(self.connection))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(json.dumps(reply, default=str).encode() + b"\n")

        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a stale socket of a previous run
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0660 from the start (umask), not chmod'ed afterwards: no window where others may connect.
        old = os.umask(0o117)
        try:
            self._server = socketserver.ThreadingUnixStreamServer(str(path), _Request)
        finally:
            os.umask(old)
        self._server.daemon_threads = True
        os.chmod(path, 0o660)
        self._thread = threading.Thread(target=self._server.serve_forever, name="control", daemon=True)

    def dispatch(self, line: bytes, uid: int | None = None) -> dict[str, Any]:
        """Decode one request line, run its handler, and return the reply (always a JSON object)."""
        if len(line) > MAX_REQUEST:
            return {"ok": False, "error": f"request larger than {MAX_REQUEST} bytes"}
        try:
            request = json.loads(line)
        except ValueError as exc:
            return {"ok": False, "error": f"bad request: not JSON ({exc})"}
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return {"ok": False, "error": 'bad request: expected {"cmd": "<name>", …}'}
        cmd = request["cmd"]
        handler = self.handlers.get(cmd)
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            return {"ok": False, "error": f"unknown command {cmd!r} (known: {known})"}
        if cmd not in ("status", "trace", "infer", "calibration"):  # the read-only ones are not worth a line
            log.info("control request", extra={"cmd": cmd, "peer_uid": uid})
        try:
            return handler(request)
        except (ValueError, TypeError, KeyError) as exc:
            return {"ok": False, "error": f"bad request for {cmd!r}: {exc}"}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def candidates(configured: Path, explicit: bool) -> list[Path]:
    """Where a technician's command looks for the agent: the configured path, then the service's.

    A person's shell has no ``$RUNTIME_DIRECTORY``, so the default computed from the config points at the
    state directory while the service listens under ``/run/signalcraft``; try both unless the config
    names the socket explicitly."""
    if explicit:
        return [configured]
    return [configured] if configured == SERVICE_SOCKET else [configured, SERVICE_SOCKET]


def request(path: Path, cmd: str, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
    """Ask the running agent; raises OSError when it does not answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise ConnectionResetError(f"the agent closed {path} without an answer")
    return json.loads(data)


def ask(paths: list[Path], cmd: str, timeout: float = 5.0, **args: Any) -> tuple[Path, dict[str, Any]]:
    """:func:`request` on the first of ``paths`` that answers; raises the most telling OSError otherwise.

    Permission denied beats 'not found': it means the agent is there but this user may not talk to it."""
    errors: list[tuple[Path, OSError]] = []
    for path in paths:
        try:
            return path, request(path, cmd, timeout, **args)
        except OSError as exc:
            errors.append((path, exc))
    path, worst = next(((p, e) for p, e in errors if isinstance(e, PermissionError)), errors[0])
    raise ControlUnreachable(path, worst, [p for p, _ in errors])


class ControlUnreachable(OSError):
    """No agent answered on any candidate socket; ``hint`` says what to do about it."""

    def __init__(self, path: Path, cause: OSError, tried: list[Path]) -> None:
        self.path, self.cause, self.tried = path, cause, tried
        if isinstance(cause, PermissionError):
            hint = (
                f"permission denied on {path}: add your user to the agent's group "
                "(`sudo usermod -aG signalcraft $USER`, then log in again) or use sudo"
            )
        elif isinstance(cause, FileNotFoundError | ConnectionRefusedError):
            where = " or ".join(str(p) for p in tried)
            hint = (
                f"the agent is not running (no socket at {where}): "
                "`systemctl status signalcraft-agent` and `journalctl -u signalcraft-agent -n 50`"
            )
        elif isinstance(cause, TimeoutError):
            hint = f"the agent accepted {path} but did not answer in time: it may be hung; see the journal"
        else:
            hint = f"the agent does not answer on {path} ({cause.strerror or cause})"
        self.hint = hint
        super().__init__(hint)
