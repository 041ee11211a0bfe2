"""The SignalCraft error tree.

SignalCraftError
├── ConfigError            a setting is missing or invalid (names the setting)
├── SchemaError            a wire message is malformed (carries a precise reason)
├── SourceError            a sensor could not be read
│   ├── DeviceTimeout      no answer within the timeout
│   ├── DeviceBusy         Modbus exception 6: retry later
│   ├── IllegalAddress     Modbus exception 2: the register map is wrong
│   └── CrcError           a garbled frame (noise, wrong baud rate, two masters)
├── SinkError              the buffer or the uplink failed
└── ModelError             a model file or its manifest does not match
"""

from __future__ import annotations


class SignalCraftError(Exception):
    """Base of every error SignalCraft raises on purpose."""


class ConfigError(SignalCraftError):
    """A setting is missing or invalid. `setting` is its dotted name, e.g. ``mqtt.url``."""

    def __init__(self, setting: str, problem: str, source: str | None = None) -> None:
        self.setting = setting
        self.problem = problem
        self.source = source
        where = f" (from {source})" if source else ""
        super().__init__(f"invalid setting {setting!r}{where}: {problem}")


class SchemaError(SignalCraftError):
    """A message does not follow the wire contract; `reason` says exactly where and why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SourceError(SignalCraftError):
    """A sensor source could not deliver a value."""


class DeviceTimeout(SourceError):
    """The device did not answer within the timeout."""


class DeviceBusy(SourceError):
    """The device answered 'busy' (Modbus exception 6); the request may be retried."""


class IllegalAddress(SourceError):
    """The device rejected the address or function (Modbus exceptions 1-3); retrying will not help."""


class CrcError(SourceError):
    """The answer arrived garbled (CRC mismatch or wrong length)."""


class SinkError(SignalCraftError):
    """The local buffer or the uplink failed."""


class ModelError(SignalCraftError):
    """A model file, its manifest or its checksum does not match what the agent expects."""
