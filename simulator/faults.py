"""Faults that develop over time, injected into a simulated compressor.

A fault is not a switch: a refrigerant leak loses charge gradually, a condenser fouls over weeks. A
:class:`FaultSpec` therefore has a start and a ramp, and :meth:`FaultSpec.level` gives its severity at a
simulated time (0 before ``start_s``, rising linearly to ``severity`` over ``ramp_s``). How each fault
moves the physics is in :mod:`simulator.compressor`; the signatures are listed in ``simulator/README.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.settings import parse_duration

KINDS: tuple[str, ...] = ("refrigerant_leak", "condenser_fouling", "bearing_wear", "short_cycling")

# kind[@start[+ramp]]; start and ramp are bare simulated seconds ("600") or durations ("10m", "2h").
_SPEC = re.compile(r"^(?P<kind>[a-z_]+)(?:@(?P<start>[^+]+)(?:\+(?P<ramp>.+))?)?$")


@dataclass(frozen=True)
class FaultSpec:
    """One injected fault: which kind, when it starts, how long it takes to reach full severity."""

    kind: str
    start_s: float = 0.0
    ramp_s: float = 3600.0
    severity: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (kinds: {', '.join(KINDS)})")
        if not self.start_s >= 0:
            raise ValueError(f"fault {self.kind}: start_s must be >= 0, got {self.start_s!r}")
        if not self.ramp_s >= 0:
            raise ValueError(f"fault {self.kind}: ramp_s must be >= 0, got {self.ramp_s!r}")
        if not 0 < self.severity <= 1:
            raise ValueError(f"fault {self.kind}: severity must be in (0, 1], got {self.severity!r}")

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """``"bearing_wear"``, ``"bearing_wear@600"`` or ``"bearing_wear@600+1800"`` (start + ramp).

        Times are simulated seconds; a unit suffix (``10m``, ``2h``, ``1d``) is accepted too.
        """
        m = _SPEC.match(text.strip())
        if not m:
            raise ValueError(
                f"invalid fault {text!r}: expected KIND, KIND@START or KIND@START+RAMP "
                f"(kinds: {', '.join(KINDS)}; times in simulated seconds or like '10m')"
            )
        kwargs: dict[str, float] = {}
        for key, field in (("start", "start_s"), ("ramp", "ramp_s")):
            if m.group(key) is not None:
                kwargs[field] = _seconds(m.group(key), text)
        return cls(m.group("kind"), **kwargs)

    def level(self, sim_time: float) -> float:
        """Severity at ``sim_time``: 0 before the start, then a linear ramp up to :attr:`severity`."""
        if sim_time < self.start_s:
            return 0.0
        if self.ramp_s <= 0:
            return self.severity
        return self.severity * min(1.0, (sim_time - self.start_s) / self.ramp_s)

    def __str__(self) -> str:
        return f"{self.kind}@{self.start_s:g}+{self.ramp_s:g}"


def _seconds(value: str, text: str) -> float:
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parse_duration(value).total_seconds()
        except ValueError:
            raise ValueError(
                f"invalid fault {text!r}: {value!r} is not a time (simulated seconds, or like '10m', '2h')"
            ) from None
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"invalid fault {text!r}: {value!r} must be a finite time >= 0")
    return seconds
