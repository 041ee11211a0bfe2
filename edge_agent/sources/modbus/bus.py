"""One owner thread per serial port (or TCP endpoint), serving every slave on it.

Several slaves on one RS-485 line must never talk at once, so one :class:`Bus` thread owns the line and
runs every transaction on it; different ports are different threads, so a dead slave on one line never
slows another line, and the agent's loop never waits for any of them (it reads each slave's latest
values). On a line, each slave's poll groups are scheduled by deadline; a stale slave is probed with
back-off and costs one timeout per probe.

When the port itself fails (adapter unplugged), every slave on it goes stale and the port is reopened
with back-off (0.5 s doubling to 10 s). The thread is supervised: an unexpected exception is logged
with its traceback, counted in ``health.crashes`` and the loop restarts after a back-off; it never
dies silently. Idle waits block on an event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_agent.sources.modbus.errors import PortError
from edge_agent.sources.modbus.source import Group, Link, SlaveSource
from edge_agent.sources.modbus.trace import Tracer

log = logging.getLogger(__name__)
PORT_BACKOFF_S = (0.5, 10.0)
CRASH_BACKOFF_S = (1.0, 60.0)


@dataclass
class BusHealth:
    state: str = "starting"  # starting | running | port-down | crashed | stopped
    rounds: int = 0  # scheduler passes that polled something
    crashes: int = 0
    last_crash: str = ""
    port_errors: int = 0
    last_port_error: str = ""


class Bus:
    """Owns one :class:`Link` and polls its slaves on their schedules in a thread of its own."""

    def __init__(self, name: str, open_link: Callable[[], Link], slaves: list[SlaveSource]) -> None:
        self.name = name
        self.slaves = slaves
        self.health = BusHealth()
        self._open_link = open_link
        self.tracer: Tracer | None = None  # the line's frame trace, for `signalcraft-agent diag trace`
        self._link: Link | None = None
        self._stop = threading.Event()
        self._first_round = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._supervise, name=f"bus {self.name}", daemon=True)
            self._thread.start()

    def wait_first_round(self, timeout: float) -> bool:
        """Block until every slave has been polled once (or given up on), at most ``timeout`` s."""
        return self._first_round.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._close()
        self.health.state = "stopped"

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status_dict(self) -> dict[str, Any]:
        h = self.health
        return {
            "state": h.state,
            "rounds": h.rounds,
            "crashes": h.crashes,
            "last_crash": h.last_crash,
            "port_errors": h.port_errors,
            "last_port_error": h.last_port_error,
        }

    # -- the thread ---------------------------------------------------------------------------------

    def _supervise(self) -> None:
        backoff = CRASH_BACKOFF_S[0]
        while not self._stop.is_set():
            try:
                self._serve()
                return
            except Exception as exc:  # the supervisor: report, back off, restart the loop
                self.health.crashes += 1
                self.health.last_crash = f"{type(exc).__name__}: {exc}"
                self.health.state = "crashed"
                log.exception("bus loop failed; restarting it", extra={"bus": self.name, "backoff": backoff})
                self._close()
                self._first_round.set()  # nobody should wait for a round that will not come soon
                self._stop.wait(backoff)
                backoff = min(backoff * 2, CRASH_BACKOFF_S[1])

    def _serve(self) -> None:
        now = time.monotonic()
        for s in self.slaves:
            for g in s.groups:
                g.next_due = min(g.next_due, now) if g.next_due else now
        port_backoff = PORT_BACKOFF_S[0]
        pending_first = {id(s) for s in self.slaves}
        while not self._stop.is_set():
            due = self._due(time.monotonic())
            if not due:
                self._stop.wait(self._sleep_for())
                continue
            try:
                link = self._ensure_link()
                for slave, group in due:
                    if self._stop.is_set():
                        return
                    slave.poll_group(link, group)
                    self._reschedule(group)
                    pending_first.discard(id(slave))
            except PortError as exc:
                self._port_down(exc)
                for _, group in due:
                    self._reschedule(group)
                pending_first.clear()
                self._first_round.set()
                self._stop.wait(port_backoff)
                port_backoff = min(port_backoff * 2, PORT_BACKOFF_S[1])
                continue
            port_backoff = PORT_BACKOFF_S[0]
            self.health.state = "running"
            self.health.rounds += 1
            if not pending_first:
                self._first_round.set()

    def _due(self, now: float) -> list[tuple[SlaveSource, Group]]:
        due = [(s, g) for s in self.slaves for g in s.groups if g.next_due <= now]
        due.sort(key=lambda sg: sg[1].next_due)
        return due

    def _sleep_for(self) -> float:
        next_due = min(g.next_due for s in self.slaves for g in s.groups)
        return max(0.0, next_due - time.monotonic())

    @staticmethod
    def _reschedule(group: Group) -> None:
        group.next_due += group.interval
        now = time.monotonic()
        if group.next_due <= now:  # fell behind (slow line): skip the missed slots, do not burst
            group.next_due = now + group.interval

    def _ensure_link(self) -> Link:
        if self._link is None:
            link = self._open_link()
            opener = getattr(link, "open", None)
            if opener is not None:
                opener()
            self._link = link
            if self.health.state == "port-down":
                log.info("port back", extra={"bus": self.name})
        return self._link

    def _port_down(self, exc: PortError) -> None:
        self._close()
        if self.health.state != "port-down":
            log.warning("port down", extra={"bus": self.name, "error": str(exc)})
        self.health.state = "port-down"
        self.health.port_errors += 1
        self.health.last_port_error = str(exc)
        for s in self.slaves:
            s.port_failed(exc)

    def _close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
