"""The wire contract: every MQTT payload SignalCraft sends, as msgspec structs.

Topics are ``signalcraft/v1/{site}/{device}/{kind}`` (see :mod:`common.topics`). Every message
carries the schema version ``v``, the device id, the boot id and a per-boot sequence number (the
idempotency key the collector deduplicates on), device UTC timestamps, and the version of the model
that produced any score. Telemetry carries a batch of readings.

msgspec rather than pydantic: it decodes and validates JSON straight into these structs in one pass,
several times faster than pydantic v2 and with a fraction of its import cost, which matters both on a
Raspberry Pi and in a collector that validates thousands of messages a second. Its errors name the exact
path (``Expected `int`, got `str` - at `$.readings[0].seq```), which is the reject reason we store.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from common.errors import SchemaError

SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 1 << 20
MAX_BATCH = 5000

Name = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
PointName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
BootId = Annotated[str, Meta(pattern=r"^[0-9a-f]{32}$")]
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1)]
UtcTime = Annotated[datetime, Meta(tz=True)]
Version = Annotated[Literal[1], Meta(description="schema version")]


class HealthState(StrEnum):
    """The edge's verdict on its machine, from the debounced health state machine."""

    INITIALIZING = "INITIALIZING"  # learning this machine's normal (on-site calibration)
    HEALTHY = "HEALTHY"
    WARNING = "WARNING"
    ALARM = "ALARM"
    SENSOR_FAULT = "SENSOR_FAULT"  # the sensors, not the machine, are the problem


class Reading(Struct, frozen=True):
    """One poll cycle of one device: the values read, and the model's score when there is one."""

    seq: Seq
    ts: UtcTime
    values: dict[PointName, float]
    missing: list[PointName] = []  # points that could not be read in this cycle (stale slave, error)
    score: float | None = None
    state: HealthState | None = None
    # None when the device clock is trustworthy; "unsynced" (no NTP sync) or "jump:+3600s" (the wall clock
    # jumped by that much since the previous reading) otherwise. The collector keeps its receive time too.
    clock: str | None = None


class Telemetry(Struct, frozen=True, tag="telemetry", tag_field="kind"):
    """A batch of readings (one when live, many when replaying a backlog)."""

    v: Version
    site: Name
    device: Name
    boot: BootId
    readings: Annotated[list[Reading], Meta(min_length=1, max_length=MAX_BATCH)]
    model: str | None = None  # version of the model that produced the scores


class Contributor(Struct, frozen=True):
    """A feature that pushed the score up, and how far it is from this machine's normal."""

    feature: str
    value: float
    z: float


class StateChange(Struct, frozen=True, tag="state", tag_field="kind"):
    """The health state of a device changed (sent on every transition)."""

    v: Version
    site: Name
    device: Name
    boot: BootId
    seq: Seq
    ts: UtcTime
    state: HealthState
    previous: HealthState | None = None
    score: float | None = None
    model: str | None = None
    reason: str = ""
    contributors: list[Contributor] = []


class Status(Struct, frozen=True, tag="status", tag_field="kind"):
    """Retained presence: the birth message on connect, the Last Will when the agent vanishes."""

    v: Version
    site: Name
    device: Name
    boot: BootId
    ts: UtcTime
    online: bool
    reason: str = ""  # "birth", "shutdown" or "lost" (the Last Will)
    agent_version: str = ""
    sources: dict[str, str] = {}  # source name -> "online" | "stale since …" | "error: …"


class Command(Struct, frozen=True, tag="cmd", tag_field="kind"):
    """Downlink: the cloud asks an agent to do something; answered on ``…/cmd/ack`` with the same id."""

    v: Version
    id: Annotated[str, Meta(min_length=1, max_length=64)]
    cmd: Annotated[str, Meta(pattern=r"^[a-z_]{1,32}$")]
    args: dict[str, str | int | float | bool] = {}
    ts: UtcTime | None = None


class CommandAck(Struct, frozen=True, tag="cmd/ack", tag_field="kind"):
    v: Version
    site: Name
    device: Name
    boot: BootId
    id: str
    ts: UtcTime
    ok: bool
    result: dict[str, Any] = {}
    error: str = ""


Message = Telemetry | StateChange | Status | Command | CommandAck
KINDS: dict[str, type[Message]] = {
    "telemetry": Telemetry,
    "state": StateChange,
    "status": Status,
    "cmd": Command,
    "cmd/ack": CommandAck,
}

_encoder = msgspec.json.Encoder()
_decoders = {kind: msgspec.json.Decoder(cls) for kind, cls in KINDS.items()}


def encode(message: Message) -> bytes:
    """Serialise a message to JSON bytes (the ``kind`` tag is included)."""
    return _encoder.encode(message)


def decode(kind: str, payload: bytes) -> Message:
    """Parse and validate a payload of the given kind; raise :class:`SchemaError` with the reason."""
    decoder = _decoders.get(kind)
    if decoder is None:
        raise SchemaError(f"unknown message kind {kind!r}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise SchemaError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        message = decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise SchemaError(_version_hint(payload) or str(exc)) from None
    except msgspec.DecodeError as exc:
        raise SchemaError(f"not valid JSON: {exc}") from None
    _check_finite(message)
    return message


def _version_hint(payload: bytes) -> str | None:
    """Say 'unsupported schema version' instead of a generic literal mismatch on ``v``."""
    try:
        head = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return None
    if isinstance(head, dict) and "v" in head and head["v"] != SCHEMA_VERSION:
        return f"unsupported schema version {head['v']!r} (this collector speaks {SCHEMA_VERSION})"
    return None


def _check_finite(message: Message) -> None:
    # JSON has no NaN, but 1e999 decodes to inf; a non-finite value would poison every aggregate.
    if isinstance(message, Telemetry):
        for i, reading in enumerate(message.readings):
            for name, value in reading.values.items():
                if not math.isfinite(value):
                    raise SchemaError(f"non-finite value {value} - at `$.readings[{i}].values.{name}`")
            if reading.score is not None and not math.isfinite(reading.score):
                raise SchemaError(f"non-finite score - at `$.readings[{i}].score`")
    elif isinstance(message, StateChange) and message.score is not None and not math.isfinite(message.score):
        raise SchemaError("non-finite score - at `$.score`")


def json_schemas() -> dict[str, dict]:
    """The published JSON Schema of each message kind (see ``docs/wire-protocol.md``)."""
    return {kind: msgspec.json.schema(cls) for kind, cls in KINDS.items()}
