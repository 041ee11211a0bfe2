"""MQTT topic names: ``signalcraft/v1/{site}/{device}/{kind}``."""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "signalcraft/v1"
KINDS = ("telemetry", "state", "status", "cmd", "cmd/ack")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed SignalCraft topic; refuses names that could not have come from a real device."""

    site: str
    device: str
    kind: str

    def __post_init__(self) -> None:
        for field, value in (("site", self.site), ("device", self.device)):
            if not _NAME.match(value):
                raise ValueError(f"invalid {field} {value!r} in topic")
        if self.kind not in KINDS:
            raise ValueError(f"invalid kind {self.kind!r} in topic (expected one of {', '.join(KINDS)})")

    def __str__(self) -> str:
        return f"{PREFIX}/{self.site}/{self.device}/{self.kind}"

    @classmethod
    def parse(cls, topic: str) -> Topic:
        parts = topic.split("/")
        if len(parts) < 5 or "/".join(parts[:2]) != PREFIX:
            raise ValueError(f"topic {topic!r} is not under {PREFIX}/{{site}}/{{device}}/{{kind}}")
        return cls(site=parts[2], device=parts[3], kind="/".join(parts[4:]))


def topic(site: str, device: str, kind: str) -> str:
    """The topic a device publishes ``kind`` messages on."""
    return str(Topic(site, device, kind))


def fleet_filter(kind: str = "+", share_group: str | None = None) -> str:
    """Subscription filter for one kind across the fleet, optionally as an MQTT v5 shared subscription."""
    flt = f"{PREFIX}/+/+/{kind}"
    return f"$share/{share_group}/{flt}" if share_group else flt
