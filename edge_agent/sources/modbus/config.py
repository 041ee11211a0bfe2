"""From validated settings to buses and slaves, before any port is opened.

Profiles are loaded and planned here, so a bad register map stops the agent at start with an error
naming the setting, the device and the point. Every ``[[modbus]]`` entry naming the same port joins
one :class:`~.bus.Bus` (one owner thread per RS-485 line); every ``[[modbus_tcp]]`` endpoint
(host:port) gets its own.
"""

from __future__ import annotations

from collections.abc import Callable

from common.errors import ConfigError
from common.settings import parse_duration
from edge_agent.config import AgentSettings, ModbusDevice, ModbusTcpDevice
from edge_agent.sources.modbus import profile as profiles
from edge_agent.sources.modbus.bus import Bus
from edge_agent.sources.modbus.rtu import RtuLine
from edge_agent.sources.modbus.source import Link, SlaveSource
from edge_agent.sources.modbus.trace import Tracer


def slave_source(
    label: str, dev: ModbusDevice | ModbusTcpDevice, default_interval: float
) -> SlaveSource:
    """Load and check one device's profile; errors name ``label`` (``modbus[2]``) and the device."""
    try:
        prof = profiles.load(dev.profile)
    except ConfigError as exc:
        problem = f"device {dev.name!r}, {exc.setting}: {exc.problem}"
        raise ConfigError(f"{label}.profile", problem, exc.source) from None
    overrides = {}
    for group, text in dev.groups.items():
        if group not in prof.groups:
            declared = ", ".join(sorted(prof.groups)) or "none"
            raise ConfigError(
                f"{label}.groups.{group}", f"profile {prof.name!r} has no poll group {group!r} ({declared})"
            )
        overrides[group] = parse_duration(text).total_seconds()
    interval = dev.poll_interval.total_seconds() if dev.poll_interval else default_interval
    slave = dev.slave if isinstance(dev, ModbusDevice) else dev.unit
    return SlaveSource(
        dev.name,
        slave,
        prof,
        interval=interval,
        timeout=dev.timeout.total_seconds(),
        retries=dev.retries,
        max_gap=dev.max_gap,
        group_intervals=overrides,
        device=dev,
    )


def build(settings: AgentSettings) -> list[Bus]:
    """Every Modbus bus of the agent, not started; point names must be unique across all sources."""
    default = settings.agent.poll_interval.total_seconds()
    owner: dict[str, str] = {}
    rtu: dict[str, list[SlaveSource]] = {}
    tcp: dict[tuple[str, int], list[SlaveSource]] = {}
    entries: list[tuple[str, ModbusDevice | ModbusTcpDevice]] = [
        *((f"modbus[{i}]", d) for i, d in enumerate(settings.modbus)),
        *((f"modbus_tcp[{i}]", d) for i, d in enumerate(settings.modbus_tcp)),
    ]
    for label, dev in entries:
        src = slave_source(label, dev, default)
        for p in src.profile.points:
            if p.name in owner:
                raise ConfigError(
                    f"{label}.profile", f"point {p.name!r} of {dev.name!r} is also read by {owner[p.name]!r}"
                )
            owner[p.name] = dev.name
        if isinstance(dev, ModbusDevice):
            rtu.setdefault(dev.port, []).append(src)
        else:
            tcp.setdefault((dev.host, dev.port), []).append(src)
    buses = []
    for port, slaves in rtu.items():
        first: ModbusDevice = slaves[0].device
        tracer = Tracer(any(s.device.trace for s in slaves))
        buses.append(Bus(port, _rtu_opener(first, tracer), slaves))
        buses[-1].tracer = tracer
    for (host, port), slaves in tcp.items():
        tracer = Tracer(any(s.device.trace for s in slaves))
        timeout = max(s.timeout for s in slaves)
        buses.append(Bus(f"{host}:{port}", _tcp_opener(host, port, timeout, tracer), slaves))
        buses[-1].tracer = tracer
    return buses


def _rtu_opener(dev: ModbusDevice, tracer: Tracer) -> Callable[[], Link]:
    return lambda: RtuLine(dev.port, dev.baud, dev.parity, dev.stopbits, tracer)


def _tcp_opener(host: str, port: int, timeout: float, tracer: Tracer) -> Callable[[], Link]:
    def open_link() -> Link:
        from edge_agent.sources.modbus.tcp import TcpLink  # pymodbus only when a TCP device exists

        return TcpLink(host, port, timeout, tracer)

    return open_link
