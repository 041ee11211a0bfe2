"""The request planner: merge a profile's points into the fewest Modbus reads.

Points of the same function whose addresses lie close together are read in one request, within the
protocol's limits (125 registers or 2000 bits per read) and a configurable largest gap of unused
addresses. A gap costs 2 bytes a register on the wire; a request costs a whole round trip (at 19200
baud, ~8 ms of framing and silence plus the slave's turnaround), so spanning a small gap is cheaper.
Spanning unmapped addresses can make a strict device answer "illegal address": ``max_gap = 0`` then.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.sources.modbus.profile import Point

MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass(frozen=True, slots=True)
class Request:
    """One read: ``count`` registers (or bits) from ``address`` with ``function``, covering ``points``."""

    function: int
    address: int
    count: int
    points: tuple[Point, ...]

    def values(self, words: list[int]) -> dict[str, float]:
        """Physical values of the request's points from the words (or bits) it returned."""
        out = {}
        for p in self.points:
            if p.type != "string":
                start = p.address - self.address
                out[p.name] = p.value(words[start : start + p.width])
        return out

    def texts(self, words: list[int]) -> dict[str, str]:
        """The request's string points (device information, not readings)."""
        out = {}
        for p in self.points:
            if p.type == "string":
                start = p.address - self.address
                out[p.name] = p.text(words[start : start + p.width])
        return out


def plan(points: tuple[Point, ...] | list[Point], max_gap: int = 10) -> list[Request]:
    """Group points into requests; every point lands in exactly one request."""
    requests: list[Request] = []
    for function in sorted({p.function for p in points}):
        limit = MAX_BITS if function in (1, 2) else MAX_REGISTERS
        group = sorted((p for p in points if p.function == function), key=lambda p: (p.address, -p.width))
        current: list[Point] = []
        start = end = 0  # end is exclusive
        for p in group:
            p_end = p.address + p.width
            if current and p.address - end <= max_gap and max(end, p_end) - start <= limit:
                current.append(p)
                end = max(end, p_end)
                continue
            if current:
                requests.append(Request(function, start, end - start, tuple(current)))
            current, start, end = [p], p.address, p_end
        if current:
            requests.append(Request(function, start, end - start, tuple(current)))
    return requests
