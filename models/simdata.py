"""Readings from the simulator's physics, exactly as the agent would see them over Modbus.

Every value goes through the register map of the simulated controller (float32 words, the int16
evaporator temperature in 0.1 °C steps, flags as integers), so the model is trained on the same
quantisation the agent decodes in the field.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from edge_agent.sources.modbus import profile as profiles
from simulator.compressor import Compressor
from simulator.faults import FaultSpec

PROFILE = "signalcraft-sim-compressor"
KINDS = ("freezer", "cold_room")
START_CLOCK_S = 8 * 3600.0


class RegisterView:
    """Rounds physical values through the profile's registers (what a Modbus poll returns)."""

    def __init__(self, ref: str = PROFILE) -> None:
        self._points = profiles.load(ref).points

    def __call__(self, values: dict[str, float]) -> dict[str, float]:
        return {p.name: p.value(p.raw(values[p.name])) for p in self._points if p.name in values}


def readings(
    kind: str,
    seed: int,
    seconds: float,
    dt: float,
    faults: Sequence[FaultSpec] = (),
    start_clock_s: float = START_CLOCK_S,
    view: RegisterView | None = None,
) -> Iterator[tuple[float, dict[str, float]]]:
    """(simulated time, register-rounded values) every ``dt`` simulated seconds for ``seconds``."""
    view = view or RegisterView()
    unit = Compressor(seed=seed, faults=tuple(faults), start_clock_s=start_clock_s, kind=kind)
    for _ in range(int(seconds // dt)):
        unit.step(dt)
        yield unit.sim_time, view(unit.sensors())
