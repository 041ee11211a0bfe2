"""The agent's settings (``agent.toml``), validated before any port is opened or socket connected.

Every leaf can be overridden by ``SIGNALCRAFT_<SECTION>_<KEY>``, e.g. ``SIGNALCRAFT_MQTT_URL``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from common import settings as loader
from common.errors import ConfigError
from common.mqtt_url import BrokerAddress
from common.schema import Name

Positive = Annotated[int, Meta(gt=0)]


class AgentSection(msgspec.Struct, forbid_unknown_fields=True):
    site: Name
    device: Name  # also the broker identity: client id and, with ACLs, the user name
    state_dir: str  # buffer, calibration and boot counter live here
    poll_interval: timedelta = timedelta(seconds=1)
    control_socket: str = ""  # default: $RUNTIME_DIRECTORY/agent.sock under systemd, else <state_dir>/
    metrics_port: Annotated[int, Meta(ge=0, le=65535)] = 0  # 0 = no Prometheus endpoint


class MqttSection(msgspec.Struct, forbid_unknown_fields=True):
    url: str  # mqtt://user:password@host:1883 or mqtts://… (required: no default broker)
    client_id: str = ""  # default: the device id
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    keepalive: timedelta = timedelta(seconds=30)
    # MQTT 5 by default; "3.1.1" for older brokers (and the embedded Python broker of the demo).
    protocol: Literal["5", "3.1.1"] = "5"
    max_inflight: Annotated[int, Meta(ge=1, le=1000)] = 20
    batch_max: Annotated[int, Meta(ge=1, le=5000)] = 500  # readings per message when replaying a backlog
    replay_rate: Annotated[float, Meta(gt=0)] = 2000.0  # backlog readings per second, at most


class BufferSection(msgspec.Struct, forbid_unknown_fields=True):
    max_bytes: Annotated[int, Meta(ge=1024 * 1024)] = 256 * 1024 * 1024  # the files on disk, all included
    fsync: Literal["normal", "full"] = "normal"


Baud = Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]


class ModbusDevice(msgspec.Struct, forbid_unknown_fields=True):
    """One slave on a serial line; every entry naming the same ``port`` shares one bus (one owner)."""

    name: Name
    port: str  # /dev/ttyUSB0, /dev/serial/by-id/…
    slave: Annotated[int, Meta(ge=1, le=247)]
    profile: str  # bundled profile name or path to a profile TOML
    baud: Baud = 19200
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    timeout: timedelta = timedelta(milliseconds=300)
    retries: Annotated[int, Meta(ge=0, le=5)] = 1
    max_gap: Annotated[int, Meta(ge=0, le=100)] = 10  # unused registers a merged read may span
    poll_interval: timedelta | None = None  # default: agent.poll_interval
    groups: dict[str, str] = {}  # poll group -> interval ("10s"), overriding the profile's [groups]
    trace: bool = False  # log every frame (hex + timing) to signalcraft.modbus.trace


class ModbusTcpDevice(msgspec.Struct, forbid_unknown_fields=True):
    """One Modbus TCP device (or one unit id behind a TCP gateway)."""

    name: Name
    host: str
    profile: str
    port: Annotated[int, Meta(ge=1, le=65535)] = 502
    unit: Annotated[int, Meta(ge=0, le=255)] = 1
    timeout: timedelta = timedelta(seconds=1)
    retries: Annotated[int, Meta(ge=0, le=5)] = 1
    max_gap: Annotated[int, Meta(ge=0, le=100)] = 10
    poll_interval: timedelta | None = None
    groups: dict[str, str] = {}
    trace: bool = False


class WaveformDevice(msgspec.Struct, forbid_unknown_fields=True):
    """A microcontroller streaming vibration or sound frames (docs/serial-protocol.md)."""

    name: Name
    port: str
    baud: Annotated[int, Meta(ge=1200, le=12_000_000)] = 921600  # ignored by USB CDC devices
    window: timedelta = timedelta(seconds=1)  # samples per window handed to the analytics
    max_windows: Annotated[int, Meta(ge=1, le=1000)] = 8  # queued windows; the oldest are dropped beyond


class ModelSection(msgspec.Struct, forbid_unknown_fields=True):
    path: str = ""  # folder with the .onnx and its manifest; empty = the bundled model
    # Defaults for a real unit polled at 1 Hz (presets.REALTIME): the model's window covers 20 minutes of
    # machine time and calibration watches two hours of normal life.
    calibration_readings: Positive = 7200
    window: Positive = 1200


class AgentSettings(msgspec.Struct, forbid_unknown_fields=True):
    agent: AgentSection
    mqtt: MqttSection
    modbus: list[ModbusDevice] = []
    modbus_tcp: list[ModbusTcpDevice] = []
    waveform: list[WaveformDevice] = []
    buffer: BufferSection = msgspec.field(default_factory=BufferSection)
    model: ModelSection = msgspec.field(default_factory=ModelSection)

    @property
    def state_path(self) -> Path:
        return Path(self.agent.state_dir)

    @property
    def socket_path(self) -> Path:
        """``agent.control_socket``, else under the service's runtime directory (systemd sets
        ``$RUNTIME_DIRECTORY`` from ``RuntimeDirectory=``), else in the state directory."""
        if self.agent.control_socket:
            return Path(self.agent.control_socket)
        runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
        return Path(runtime or self.state_path) / "agent.sock"

    @property
    def broker(self) -> BrokerAddress:
        return BrokerAddress.parse(self.mqtt.url)


def load(path: str | Path | None) -> AgentSettings:
    """Load, validate and cross-check the agent's settings; :class:`ConfigError` names the culprit."""
    loaded = loader.load_with_sources(AgentSettings, path)
    settings: AgentSettings = loaded.settings
    try:  # parse now so a bad URL stops the agent before any I/O
        settings.broker  # noqa: B018
    except ConfigError as exc:
        raise ConfigError(exc.setting, exc.problem, loaded.sources.get("mqtt.url")) from None
    if settings.agent.poll_interval <= timedelta(0):
        raise ConfigError("agent.poll_interval", "must be positive")
    _check_sources(settings)
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(settings.mqtt, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"mqtt.{key}", f"file {value!r} does not exist")
    return settings


def _check_sources(settings: AgentSettings) -> None:
    """Source sections: unique names, one line setting per serial port, positive durations."""
    seen: dict[str, str] = {}
    entries: list[tuple[str, ModbusDevice | ModbusTcpDevice | WaveformDevice]] = [
        *((f"modbus[{i}]", d) for i, d in enumerate(settings.modbus)),
        *((f"modbus_tcp[{i}]", d) for i, d in enumerate(settings.modbus_tcp)),
        *((f"waveform[{i}]", d) for i, d in enumerate(settings.waveform)),
    ]
    for label, dev in entries:
        if dev.name in seen:
            raise ConfigError(f"{label}.name", f"duplicate source name {dev.name!r} (also {seen[dev.name]})")
        seen[dev.name] = label
        if isinstance(dev, WaveformDevice):
            if dev.window <= timedelta(0):
                raise ConfigError(f"{label}.window", "must be positive")
            continue
        if dev.timeout <= timedelta(0):
            raise ConfigError(f"{label}.timeout", "must be positive")
        if dev.poll_interval is not None and dev.poll_interval <= timedelta(0):
            raise ConfigError(f"{label}.poll_interval", "must be positive")
        for group, text in dev.groups.items():
            try:
                interval = loader.parse_duration(text)
            except ValueError as exc:
                raise ConfigError(f"{label}.groups.{group}", str(exc)) from None
            if interval <= timedelta(0):
                raise ConfigError(f"{label}.groups.{group}", "must be positive")
    lines: dict[str, tuple[int, ModbusDevice]] = {}
    for i, dev in enumerate(settings.modbus):
        first = lines.setdefault(dev.port, (i, dev))
        j, other = first
        if j == i:
            continue
        for key in ("baud", "parity", "stopbits"):
            if getattr(dev, key) != getattr(other, key):
                raise ConfigError(
                    f"modbus[{i}].{key}",
                    f"{getattr(dev, key)!r} differs from modbus[{j}] ({getattr(other, key)!r}) on the same "
                    f"port {dev.port}: one RS-485 line has one speed and framing",
                )
        if any(d.slave == dev.slave and d.port == dev.port for d in settings.modbus[:i]):
            raise ConfigError(f"modbus[{i}].slave", f"slave {dev.slave} is already polled on {dev.port}")
    for i, tcp in enumerate(settings.modbus_tcp):
        if any((d.host, d.port, d.unit) == (tcp.host, tcp.port, tcp.unit) for d in settings.modbus_tcp[:i]):
            where = f"{tcp.host}:{tcp.port}"
            raise ConfigError(f"modbus_tcp[{i}].unit", f"unit {tcp.unit} at {where} is listed twice")
    ports = {d.port for d in settings.modbus}
    for i, wave in enumerate(settings.waveform):
        if wave.port in ports or any(w.port == wave.port for w in settings.waveform[:i]):
            raise ConfigError(f"waveform[{i}].port", f"{wave.port} is already used by another source")
