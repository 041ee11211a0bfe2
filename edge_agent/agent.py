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
from typing import Any

from common import schema
from common.errors import ConfigError
from edge_agent import __version__
from edge_agent.analytics import Analytics, Verdict
from edge_agent.buffer import Buffer
from edge_agent.config import AgentSettings
from edge_agent.control import ControlServer
from edge_agent.sources.modbus import profile as profiles
from edge_agent.sources.modbus.rtu import RtuSource
from edge_agent.uplink import Uplink

log = logging.getLogger(__name__)


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


def build_sources(settings: AgentSettings) -> list[RtuSource]:
    """Load every device's profile and check that point names are unique across sources."""
    sources, owner = [], {}
    for i, dev in enumerate(settings.modbus):
        try:
            prof = profiles.load(dev.profile)
        except ConfigError as exc:
            raise ConfigError(f"modbus[{i}].profile", exc.problem) from None
        for p in prof.points:
            if p.name in owner:
                raise ConfigError(
                    f"modbus[{i}].profile", f"point {p.name!r} is also read by {owner[p.name]!r}"
                )
            owner[p.name] = dev.name
        sources.append(RtuSource(dev, prof))
    return sources


class Agent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.boot = uuid.uuid4().hex
        self.sources = build_sources(settings)  # before any I/O: a bad profile stops us here
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

    # -- one cycle -------------------------------------------------------------------------------

    def cycle(self) -> Verdict:
        values: dict[str, float] = {}
        missing: list[str] = []
        for source in self.sources:
            result = source.poll()
            values.update(result.values)
            missing.extend(result.missing)
        now = datetime.now(UTC)
        verdict = self.analytics.observe(now, values, missing)
        reading = schema.Reading(
            seq=self._seq, ts=now, values=values, missing=missing, score=verdict.score, state=verdict.state
        )
        self.buffer.add("telemetry", self.boot, schema.encode(reading))
        self._seq += 1
        self.health.produced += 1
        if verdict.changed:
            self._emit_state(now, verdict)
        self.uplink.model_version = verdict.model_version
        self.uplink.sources = {s.name: s.status.describe() for s in self.sources}
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
        self._control = ControlServer(
            self.settings.socket_path,
            {
                "status": lambda _req: self.status(),
                "recalibrate": self._recalibrate,
            },
        )
        self._control.start()
        self.uplink.start()
        interval = self.settings.agent.poll_interval.total_seconds()
        deadline = time.monotonic()
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
                deadline += interval
                now = time.monotonic()
                if deadline < now:  # we fell behind (slow bus): skip the missed slots, do not burst
                    deadline = now + interval
                self.stop_event.wait(deadline - now)
        finally:
            self._shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    def _shutdown(self) -> None:
        self.uplink.stop()
        for source in self.sources:
            source.close()
        if self._control is not None:
            self._control.stop()
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
                s.name: {
                    "port": s.device.port,
                    "slave": s.device.slave,
                    "state": s.status.state,
                    "detail": s.status.describe(),
                    "transactions": s.status.transactions,
                    "errors": s.status.errors,
                }
                for s in self.sources
            },
            "last": asdict(self.snapshot),
            "calibration": {"done": done, "needed": needed},
            "loop": asdict(self.health),
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
                "reconnects": c.reconnects,
                "connected": c.connected,
                "oldest_unsent_s": round(self.buffer.oldest_age(), 1),
                "last_error": c.last_error,
            },
        }
