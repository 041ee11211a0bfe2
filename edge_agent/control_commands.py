"""What the running agent answers on its control socket (see :mod:`edge_agent.control`).

Every handler takes the decoded request and returns a JSON-able dict with ``ok``. They only read the
agent's state, except ``recalibrate``; none of them touches a serial line (the bus threads own those),
so a technician's command can never garble a poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge_agent.control import Handler

if TYPE_CHECKING:
    from edge_agent.agent import Agent

TRACE_MAX_S = 300.0  # an on-demand trace switches itself off; a follower renews it while it watches


def handlers(agent: Agent) -> dict[str, Handler]:
    return {
        "status": lambda _req: agent.status(),
        "recalibrate": lambda req: _recalibrate(agent, req),
        "calibration": lambda _req: _calibration(agent),
        "infer": lambda _req: _infer(agent),
        "trace": lambda req: _trace(agent, req),
    }


def _calibration(agent: Agent) -> dict[str, Any]:
    done, needed = agent.analytics.calibration_progress
    return {
        "ok": True,
        "calibrated": agent.analytics.calibrated,
        "done": done,
        "needed": needed,
        "poll_interval_s": agent.settings.agent.poll_interval.total_seconds(),
    }


def _recalibrate(agent: Agent, request: dict[str, Any]) -> dict[str, Any]:
    """``{"only_if_uncalibrated": true}`` is ``calibrate start``: it never discards a finished one."""
    if request.get("only_if_uncalibrated") and agent.analytics.calibrated:
        return {
            "ok": False,
            "error": "already calibrated: `signalcraft-agent calibrate restart` discards it and learns again",
        }
    agent.analytics.recalibrate()
    return {**_calibration(agent), "ok": True}


def _infer(agent: Agent) -> dict[str, Any]:
    """The verdict on the current window: score, state, its explanation and the top features."""
    s = agent.snapshot
    done, needed = agent.analytics.calibration_progress
    return {
        "ok": True,
        "ts": s.ts,
        "state": s.state,
        "score": s.score,
        "reason": s.reason,
        "contributors": s.contributors,
        "values": s.values,
        "missing": s.missing,
        "model": agent.analytics.model_version,
        "calibration": {"done": done, "needed": needed, "calibrated": agent.analytics.calibrated},
    }


def _trace(agent: Agent, request: dict[str, Any]) -> dict[str, Any]:
    """``{"since": n, "seconds": s}``: switch frame tracing on for ``s`` seconds on every line (or the
    one named by ``"port"``) and return the frames numbered from ``n`` on."""
    since = request.get("since", {})
    if not isinstance(since, dict):
        raise ValueError("'since' maps a port to the next frame number")
    seconds = min(float(request.get("seconds", 30.0)), TRACE_MAX_S)
    only = request.get("port")
    lines: dict[str, Any] = {}
    for bus in agent.buses:
        if bus.tracer is None or (only and bus.name != only):
            continue
        bus.tracer.enable_for(seconds)
        cursor, frames = bus.tracer.since(int(since.get(bus.name, 0)))
        lines[bus.name] = {
            "next": cursor,
            "frames": [
                {
                    "slave": f.slave,
                    "tx": f.request.hex(" ").upper(),
                    "rx": f.response.hex(" ").upper(),
                    "ms": round(f.elapsed_ms, 1),
                    "outcome": f.outcome,
                    "line": f.line(),
                }
                for f in frames
            ],
        }
    if only and not lines:
        raise ValueError(f"no Modbus line {only!r} (lines: {', '.join(b.name for b in agent.buses)})")
    return {"ok": True, "lines": lines}
