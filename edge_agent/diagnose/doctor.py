"""``signalcraft-agent doctor``: every check in one report a technician can send to the office.

Order: the config; the running agent (through its control socket: sources, lines, loop, delivery,
calibration) — or, when it is not running, the serial ports and one read of every slave on the
agent's own RTU code; the broker (:mod:`.mqtt`); the state directory's disk; the clock. A failed
check names the cause and the fix; ``doctor`` exits non-zero when any check failed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from common.errors import ConfigError, SourceError
from edge_agent import control
from edge_agent.config import AgentSettings, ModbusDevice
from edge_agent.diagnose import Check, fail, ok, warn
from edge_agent.diagnose import modbus as mb
from edge_agent.diagnose import mqtt as mq
from edge_agent.diagnose import ports as serial_ports

BACKLOG_WARN_S = 300.0  # unsent readings older than this mean the uplink is not keeping up
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")


def run(settings: AgentSettings, sockets: list[Path], timeout: float = 5.0) -> list[Check]:
    checks: list[Check] = [ok("config", f"{settings.agent.site}/{settings.agent.device}: settings valid")]
    try:
        _, status = control.ask(sockets, "status", timeout)
    except control.ControlUnreachable as exc:
        checks.append(
            fail(
                "agent",
                "the agent does not answer on its control socket",
                exc.hint,
                "`sudo systemctl start signalcraft-agent`; `journalctl -u signalcraft-agent`",
            )
        )
        checks += _lines_offline(settings)
    else:
        checks += _agent(status)
    checks += mq.probe(mq.Target.from_settings(settings), timeout)
    checks.append(_disk(settings))
    clock = _clock()
    if clock is not None:
        checks.append(clock)
    return checks


def config_failure(exc: ConfigError) -> Check:
    where = f" (from {exc.source})" if exc.source else ""
    return fail(
        "config",
        f"setting {exc.setting!r}{where}: {exc.problem}",
        fix=f"correct {exc.setting} in the config file (or the SIGNALCRAFT_* variable that sets it); "
        "`signalcraft-agent config check` re-checks",
    )


def _agent(s: dict[str, Any]) -> list[Check]:
    checks = [
        ok("agent", f"running: agent {s['version']}, boot {s['boot'][:8]}, {s['loop']['cycles']} cycles")
    ]
    for name, bus in s.get("buses", {}).items():
        if bus["state"] == "port-down":
            checks.append(
                fail(
                    f"line {name}",
                    f"port down: {bus['last_port_error']}",
                    fix="`signalcraft-agent diag ports`; replug the adapter",
                )
            )
        elif bus["crashes"]:
            checks.append(
                warn(
                    f"line {name}",
                    f"{bus['crashes']} loop crash(es): {bus['last_crash']}",
                    fix="send this report and the journal to the office",
                )
            )
    for name, src in s["sources"].items():
        label, state = f"slave {name}", src["state"]
        if state == "online":
            checks.append(ok(label, f"online: slave {src['slave']} on {src['port']}, {src['polls']} polls"))
        elif state in ("stale", "error"):
            checks.append(
                fail(
                    label,
                    src["detail"],
                    fix=f"`signalcraft-agent diag trace --port {src['port']}` shows the frames",
                )
            )
        else:
            checks.append(warn(label, f"{state}: not polled yet"))
    for name, wave in s.get("waveform", {}).items():
        good = str(wave.get("detail", "")).startswith("online") or wave.get("state") == "online"
        checks.append((ok if good else warn)(f"waveform {name}", str(wave.get("detail", wave))))
    loop = s["loop"]
    if loop["crashes"]:
        checks.append(
            warn(
                "poll loop",
                f"{loop['crashes']} cycle crash(es), last: {loop['last_crash']}",
                fix="send this report and the journal to the office",
            )
        )
    d = s["delivery"]
    counts = f"produced {d['produced']}, acked {d['acked']}, buffered {d['buffered']}, dropped {d['dropped']}"
    if not d["connected"]:
        checks.append(
            fail(
                "uplink",
                f"not connected ({d['last_error'] or 'no reason yet'}); {counts}",
                fix="the broker steps below say why",
            )
        )
    elif d["oldest_unsent_s"] > BACKLOG_WARN_S or d["dropped"]:
        checks.append(
            warn(
                "uplink",
                f"connected, oldest unsent {d['oldest_unsent_s']:.0f} s; {counts}",
                "the uplink is slow or was down; dropped readings are lost for good",
                "check the site's internet link; `signalcraft-agent buffer inspect`",
            )
        )
    else:
        checks.append(ok("uplink", f"connected; {counts}"))
    cal = s["calibration"]
    if cal["done"] < cal["needed"]:
        checks.append(
            ok("calibration", f"learning this machine's normal: {cal['done']}/{cal['needed']} readings")
        )
    else:
        last = s["last"]
        checks.append(ok("calibration", f"calibrated; health {last['state']}: {last['reason']}"))
    return checks


def _lines_offline(settings: AgentSettings) -> list[Check]:
    """With the agent stopped the ports are free: check access and read each slave once."""
    from edge_agent.agent import build_sources

    checks = []
    seen: set[str] = set()
    for dev in settings.modbus:
        if dev.port not in seen:
            seen.add(dev.port)
            checks.append(serial_ports.access(dev.port))
    if not all(c.ok for c in checks):
        return checks
    for src in build_sources(settings):
        dev = src.device
        if not isinstance(dev, ModbusDevice) or not src.requests:
            continue  # Modbus TCP devices: the running agent's status covers them
        spec = mb.LineSpec(dev.port, dev.baud, dev.parity, dev.stopbits)
        req = src.requests[0]
        try:
            mb.read_registers(spec, dev.slave, req.function, req.address, req.count, src.timeout)
        except SourceError as exc:
            checks.append(fail(f"slave {dev.name}", str(exc), fix=mb.explain(exc, spec, dev.slave)))
        else:
            checks.append(
                ok(f"slave {dev.name}", f"slave {dev.slave} on {dev.port} answers at {dev.baud} baud")
            )
    return checks


def _disk(settings: AgentSettings) -> Check:
    path = settings.state_path
    if not path.exists():
        return warn("state dir", f"{path} does not exist yet", fix="the agent creates it on start")
    usage = shutil.disk_usage(path)
    need = settings.buffer.max_bytes
    detail = f"{path}: {usage.free / 2**20:.0f} MiB free; the buffer may take {need / 2**20:.0f} MiB"
    if usage.free < need // 4:
        return fail(
            "state dir",
            detail,
            "the disk is nearly full: the buffer cannot grow, readings get dropped",
            "free space on the SD card (`sudo journalctl --vacuum-size=50M`) or lower buffer.max_bytes",
        )
    if usage.free < need:
        return warn("state dir", detail, "less free space than the buffer cap", "lower buffer.max_bytes")
    return ok("state dir", detail)


def _clock() -> Check | None:
    """TLS and timestamps need a synchronised clock; systemd-timesyncd leaves a flag when it is."""
    if not Path("/run/systemd/system").exists():
        return None  # not booted with systemd (a container): nothing to ask
    if TIMESYNC_FLAG.exists() or os.path.exists("/run/chrony"):
        return ok("clock", "synchronised (NTP)")
    return warn(
        "clock",
        "the clock is not known to be synchronised",
        "without NTP a Pi (no RTC) starts at its last shutdown time: TLS and timestamps suffer",
        "`timedatectl`; enable NTP: `sudo timedatectl set-ntp true`",
    )
