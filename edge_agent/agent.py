"""The agent's main loop: source → features → model → state → buffer → uplink, once per poll interval.

The loop is supervised: an unexpected exception in a cycle is logged with its traceback, counted in the
agent's health and the loop carries on after a back-off; it never dies silently. Waiting between cycles
blocks on an event (stop or the next deadline), so an idle agent does not spin.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import schema
from edge_agent import __version__, control_commands, memory
from edge_agent.analytics import Analytics, Verdict
from edge_agent.buffer import Buffer
from edge_agent.clock import ClockWatch
from edge_agent.config import AgentSettings
from edge_agent.control import ControlServer
from edge_agent.sources.modbus import config as modbus_config
from edge_agent.sources.modbus.bus import Bus
from edge_agent.sources.modbus.source import SlaveSource
from edge_agent.sources.waveform import reader as waveform
from edge_agent.uplink import Uplink

if TYPE_CHECKING:  # the endpoint is off by default, and http.server costs ~1 MiB resident
    from edge_agent.metrics import MetricsServer

log = logging.getLogger(__name__)

STARTUP_GRACE_S = 120.0


@dataclass
class LoopHealth:
    cycles: int = 0
    crashes: int = 0  # unexpected exceptions caught by the supervisor
    last_crash: str = ""
    last_cycle: float = 0.0  # monotonic time of the last completed cycle (for the watchdog)
    produced: int = 0  # readings produced
    states: int = 0  # state changes produced


@dataclass
class Snapshot:
    """What the loop last saw, for ``signalcraft-agent status``."""

    ts: str = ""
    values: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    state: str = ""
    score: float | None = None
    reason: str = ""
    contributors: list[dict[str, Any]] = field(default_factory=list)


def build_sources(settings: AgentSettings) -> list[SlaveSource]:
    """Every Modbus slave of the agent (profiles loaded and checked), for ``config check``."""
    return [slave for bus in modbus_config.build(settings) for slave in bus.slaves]


class Agent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.boot = uuid.uuid4().hex
        # Before any I/O: a bad profile stops us here. One bus thread per serial port / TCP endpoint.
        self.buses: list[Bus] = modbus_config.build(settings)
        self.sources: list[SlaveSource] = [s for bus in self.buses for s in bus.slaves]
        self.waveforms = [
            waveform.WaveformSource(w.name, w.port, w.baud, w.window.total_seconds(), w.max_windows)
            for w in settings.waveform
        ]
        self._buses_started = False
        state_dir = settings.state_path
        state_dir.mkdir(parents=True, exist_ok=True)
        m = settings.model
        self.analytics = Analytics(
            Path(m.path) if m.path else None,
            state_dir,
            calibration_readings=m.calibration_readings,
            window=m.window,
        )
        self.buffer = Buffer(state_dir / "buffer.sqlite3", settings.buffer.max_bytes, settings.buffer.fsync)
        self.uplink = Uplink(settings, self.buffer, self.boot, __version__)
        self.health = LoopHealth()
        self.snapshot = Snapshot()
        self.stop_event = threading.Event()
        self._seq = 0
        self._state_seq = 0
        self._control: ControlServer | None = None
        self._metrics: MetricsServer | None = None
        self.clock = ClockWatch()
        self.memory: memory.Released | None = None  # what start-up gave back (_release_startup_memory)
        self._released_for: frozenset[str] | None = None  # waveform sources whose sessions it covered
        self._started = time.monotonic()
        self.uplink.commands.update(
            {
                "status": lambda _args: self.status(),
                "recalibrate": lambda _args: self._recalibrate({}),
            }
        )

    # -- one cycle -------------------------------------------------------------------------------

    def start_sources(self) -> None:
        """Start the bus threads and give them one poll interval to read every slave once, so the
        first reading is not empty. Idempotent."""
        if self._buses_started:
            return
        self._buses_started = True
        for bus in self.buses:
            bus.start()
        for wave in self.waveforms:
            wave.start()
        deadline = time.monotonic() + self.settings.agent.poll_interval.total_seconds()
        for bus in self.buses:
            bus.wait_first_round(max(0.0, deadline - time.monotonic()))

    def cycle(self) -> Verdict:
        self.start_sources()
        values: dict[str, float] = {}
        missing: list[str] = []
        for source in self.sources:  # latest values from the bus threads: never waits on a line
            result = source.read()
            values.update(result.values)
            missing.extend(result.missing)
        # Waveform windows go to the analytics when they have a hook for them (observe_waveform).
        waveform.deliver(self.waveforms, self.analytics)
        now = datetime.now(UTC)
        verdict = self.analytics.observe(now, values, missing)
        reading = schema.Reading(
            seq=self._seq,
            ts=now,
            values=values,
            missing=missing,
            score=verdict.score,
            state=verdict.state,
            clock=self.clock.check(now),
        )
        self.buffer.add("telemetry", self.boot, schema.encode(reading))
        self._seq += 1
        self.health.produced += 1
        if verdict.changed:
            self._emit_state(now, verdict)
        self.uplink.model_version = verdict.model_version
        self.uplink.sources = {s.name: s.status.describe() for s in self.sources}
        self.uplink.sources.update({w.name: w.status_dict()["detail"] for w in self.waveforms})
        self.uplink.notify()
        self.snapshot = Snapshot(
            ts=now.isoformat(),
            values=values,
            missing=missing,
            state=verdict.state.value,
            score=verdict.score,
            reason=verdict.reason,
            contributors=[{"feature": c.feature, "value": c.value, "z": c.z} for c in verdict.contributors],
        )
        return verdict

    def _emit_state(self, now: datetime, verdict: Verdict) -> None:
        change = schema.StateChange(
            v=1,
            site=self.settings.agent.site,
            device=self.settings.agent.device,
            boot=self.boot,
            seq=self._state_seq,
            ts=now,
            state=verdict.state,
            previous=verdict.previous,
            score=verdict.score,
            model=verdict.model_version,
            reason=verdict.reason,
            contributors=list(verdict.contributors),
        )
        self.buffer.add("state", self.boot, schema.encode(change))
        self._state_seq += 1
        self.health.states += 1
        log.info("health state changed", extra={"state": verdict.state.value, "reason": verdict.reason})

    # -- supervised loop -------------------------------------------------------------------------

    def run(self, ready: threading.Event | None = None) -> None:
        """Poll until :meth:`stop`; returns after a clean shutdown."""
        self._control = ControlServer(self.settings.socket_path, control_commands.handlers(self))
        self._control.start()
        if self.settings.agent.metrics_port:
            from edge_agent.metrics import MetricsServer

            self._metrics = MetricsServer(self.settings.agent.metrics_port, self.status)
            self._metrics.start()
        self.uplink.start()
        interval = self.settings.agent.poll_interval.total_seconds()
        deadline = self._started = time.monotonic()
        backoff = 1.0
        try:
            while not self.stop_event.is_set():
                try:
                    self.cycle()
                    backoff = 1.0
                except Exception as exc:  # the supervisor: report, back off, carry on
                    self.health.crashes += 1
                    self.health.last_crash = f"{type(exc).__name__}: {exc}"
                    log.exception("poll cycle failed; restarting it", extra={"backoff_s": backoff})
                    self.stop_event.wait(backoff)
                    backoff = min(backoff * 2, 60.0)
                    deadline = time.monotonic()
                    continue
                self.health.cycles += 1
                self.health.last_cycle = time.monotonic()
                if ready is not None and not ready.is_set():
                    ready.set()
                self._release_startup_memory()
                deadline += interval
                now = time.monotonic()
                if deadline < now:  # we fell behind (slow bus): skip the missed slots, do not burst
                    deadline = now + interval
                self.stop_event.wait(deadline - now)
        finally:
            self._shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    def _release_startup_memory(self) -> None:
        """Give back the pages only start-up touched (edge_agent/memory.py) once it is over: the first
        cycle is done and every waveform source has had a window scored (its model session exists), or
        two minutes have gone by, so a dead sensor does not hold start-up open; and again when such a
        sensor comes back and brings its own session."""
        scored = self.analytics.waveform_sources
        if self._released_for is not None and scored <= self._released_for:
            return
        waiting = {w.name for w in self.waveforms} - scored
        if self._released_for is None and waiting and time.monotonic() - self._started < STARTUP_GRACE_S:
            return
        self._released_for = scored
        try:
            self.memory = memory.release_startup_pages() or self.memory
        except Exception:  # a saving, not a duty: it must never stop the loop
            log.exception("could not release start-up memory")

    def _shutdown(self) -> None:
        self.uplink.stop()
        for bus in self.buses:
            bus.stop()
        for wave in self.waveforms:
            wave.stop()
        if self._control is not None:
            self._control.stop()
        if self._metrics is not None:
            self._metrics.stop()
        self.buffer.close()

    def _recalibrate(self, _request: dict[str, Any]) -> dict[str, Any]:
        self.analytics.recalibrate()
        return {"ok": True, "calibration": list(self.analytics.calibration_progress)}

    def status(self) -> dict[str, Any]:
        c = self.uplink.counters
        done, needed = self.analytics.calibration_progress
        return {
            "ok": True,
            "site": self.settings.agent.site,
            "device": self.settings.agent.device,
            "boot": self.boot,
            "version": __version__,
            "sources": {
                s.name: {"port": bus.name, **s.status_dict()} for bus in self.buses for s in bus.slaves
            },
            "buses": {bus.name: bus.status_dict() for bus in self.buses},
            "waveform": {w.name: w.status_dict() for w in self.waveforms},
            "last": asdict(self.snapshot),
            "calibration": {"done": done, "needed": needed},
            "loop": asdict(self.health),
            "memory": {
                "rss_mib": None if (rss := memory.resident_mib()) is None else round(rss, 1),
                "released_at_startup_mib": self.memory.released_mib if self.memory else None,
            },
            "delivery": {
                "produced": self.health.produced + self.health.states,
                "acked": c.acked,
                "buffered": self.buffer.count,
                "buffer_bytes": self.buffer.bytes,
                "dropped": self.buffer.counter("dropped_full") + c.rejected,
                "dropped_by_reason": {
                    "buffer_full": self.buffer.counter("dropped_full"),
                    "rejected_by_broker": c.rejected,
                },
                "sent": c.sent,
                "replayed": c.replayed,
                "reconnects": c.reconnects,
                "connected": c.connected,
                "oldest_unsent_s": round(self.buffer.oldest_age(), 1),
                "last_error": c.last_error,
            },
        }
