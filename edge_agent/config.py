"""The agent's settings (``agent.toml``), validated before any port is opened or socket connected.

Every leaf can be overridden by ``SIGNALCRAFT_<SECTION>_<KEY>``, e.g. ``SIGNALCRAFT_MQTT_URL``.
"""

from __future__ import annotations

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
    control_socket: str = ""  # default: <state_dir>/agent.sock
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


class BufferSection(msgspec.Struct, forbid_unknown_fields=True):
    max_bytes: Annotated[int, Meta(ge=65536)] = 256 * 1024 * 1024
    fsync: Literal["normal", "full"] = "normal"


class ModbusDevice(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    port: str  # /dev/ttyUSB0, /dev/serial/by-id/…
    slave: Annotated[int, Meta(ge=1, le=247)]
    profile: str  # bundled profile name or path to a profile TOML
    baud: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 19200
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    timeout: timedelta = timedelta(milliseconds=300)
    retries: Annotated[int, Meta(ge=0, le=5)] = 1
    max_gap: Annotated[int, Meta(ge=0, le=100)] = 10  # unused registers a merged read may span


class ModelSection(msgspec.Struct, forbid_unknown_fields=True):
    path: str = ""  # folder with the .onnx and its manifest; empty = the bundled model
    calibration_readings: Positive = 600
    window: Positive = 60


class AgentSettings(msgspec.Struct, forbid_unknown_fields=True):
    agent: AgentSection
    mqtt: MqttSection
    modbus: list[ModbusDevice] = []
    buffer: BufferSection = msgspec.field(default_factory=BufferSection)
    model: ModelSection = msgspec.field(default_factory=ModelSection)

    @property
    def state_path(self) -> Path:
        return Path(self.agent.state_dir)

    @property
    def socket_path(self) -> Path:
        return Path(self.agent.control_socket or self.state_path / "agent.sock")

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
    names = [d.name for d in settings.modbus]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"modbus[{i}].name", f"duplicate source name {name!r}")
    for i, dev in enumerate(settings.modbus):
        if dev.timeout <= timedelta(0):
            raise ConfigError(f"modbus[{i}].timeout", "must be positive")
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(settings.mqtt, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"mqtt.{key}", f"file {value!r} does not exist")
    return settings
