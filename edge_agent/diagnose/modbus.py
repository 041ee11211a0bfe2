"""One Modbus read and a bus scan, on the agent's own RTU code (:class:`.rtu.RtuLine`).

There is one implementation on the wire: what ``diag read`` sees is what the poller sees, frame for
frame (``--trace`` prints them). Errors are the :mod:`edge_agent.sources.modbus.errors` tree, whose
messages already say what to check; :func:`explain` adds the next step for the technician.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from common.errors import CrcError, DeviceTimeout, IllegalAddress, SourceError
from edge_agent.sources.modbus.errors import PortError
from edge_agent.sources.modbus.rtu import RtuLine
from edge_agent.sources.modbus.trace import Frame, Tracer

# Most common first: a scan that stops at the first speed with an answer is usually over after one.
SCAN_BAUDS = (19200, 9600, 38400, 115200, 57600, 4800, 2400, 1200)


@dataclass
class LineSpec:
    port: str
    baud: int = 19200
    parity: str = "N"
    stopbits: int = 1

    def open(self, tracer: Tracer | None = None) -> RtuLine:
        line = RtuLine(self.port, self.baud, self.parity, self.stopbits, tracer)
        line.open()
        return line


def read_registers(
    spec: LineSpec,
    slave: int,
    function: int,
    register: int,
    count: int,
    timeout: float,
    tracer: Tracer | None = None,
) -> list[int]:
    """One transaction; raises the :class:`SourceError` tree (``PortError`` for the port itself)."""
    line = spec.open(tracer)
    try:
        return line.read(slave, function, register, count, timeout)
    finally:
        line.close()


def explain(err: SourceError, spec: LineSpec, slave: int) -> str:
    """The next step after a failed read, beyond what the error already says."""
    if isinstance(err, DeviceTimeout):
        return (
            f"`signalcraft-agent diag scan --port {spec.port}` finds the slave ids and baud rate that "
            "answer; "
            f"the device's display or DIP switches show its own (here: slave {slave}, {spec.baud} baud, "
            f"parity {spec.parity})"
        )
    if isinstance(err, CrcError):
        return f"try another baud rate or parity (here {spec.baud} {spec.parity}); `diag scan` tries them all"
    if isinstance(err, IllegalAddress):
        return "the device is there and answers: check the register address (0-based) and --function (3 or 4)"
    if isinstance(err, PortError):
        return "`signalcraft-agent diag ports` lists the serial ports and who may open them"
    return ""


@dataclass
class Found:
    slave: int
    baud: int
    answer: str  # "registers" or "exception N: …" (an exception answer still proves the slave is there)


@dataclass
class ScanResult:
    port: str
    found: list[Found] = field(default_factory=list)
    garbled: dict[int, int] = field(default_factory=dict)  # baud -> garbled answers (wrong speed or noise)
    bauds_tried: list[int] = field(default_factory=list)
    probes: int = 0
    seconds: float = 0.0


Progress = Callable[[int, int, int], None]  # (probes done, probes planned, baud now)


def scan(
    port: str,
    bauds: Iterable[int],
    slaves: Iterable[int],
    *,
    parity: str = "N",
    stopbits: int = 1,
    function: int = 3,
    register: int = 0,
    timeout: float = 0.1,
    every_baud: bool = False,
    progress: Progress | None = None,
) -> ScanResult:
    """Probe every slave id at each baud rate with a one-register read; stop after the first baud rate
    where anything answered unless ``every_baud``. A :class:`PortError` aborts the scan."""
    bauds, slaves = list(bauds), list(slaves)
    result = ScanResult(port)
    planned = len(bauds) * len(slaves)
    started = time.monotonic()
    for baud in bauds:
        result.bauds_tried.append(baud)
        line = LineSpec(port, baud, parity, stopbits).open()
        try:
            for sid in slaves:
                result.probes += 1
                answer = _probe(line, sid, function, register, timeout)
                if answer == "garbled":
                    result.garbled[baud] = result.garbled.get(baud, 0) + 1
                elif answer:
                    result.found.append(Found(sid, baud, answer))
                if progress is not None:
                    progress(result.probes, planned, baud)
        finally:
            line.close()
        if result.found and not every_baud:
            break
    result.seconds = round(time.monotonic() - started, 2)
    return result


def _probe(line: RtuLine, slave: int, function: int, register: int, timeout: float) -> str:
    try:
        line.read(slave, function, register, 1, timeout)
    except DeviceTimeout:
        return ""
    except CrcError:
        return "garbled"
    except PortError:
        raise
    except SourceError as exc:
        return f"exception {getattr(exc, 'code', '?')}: {str(exc).split(': ', 1)[-1]}"
    return "registers"


def parse_ids(text: str) -> list[int]:
    """``"1-10,17"`` → [1, …, 10, 17]; every id in 1..247."""
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"{part!r} is not a slave id or range (e.g. 1-10,17)") from None
        if not 1 <= first <= last <= 247:
            raise ValueError(f"{part!r}: slave ids are 1..247")
        ids.extend(range(first, last + 1))
    if not ids:
        raise ValueError("no slave ids given")
    return sorted(set(ids))


def frame_dict(f: Frame) -> dict[str, object]:
    return {
        "slave": f.slave,
        "tx": f.request.hex(" ").upper(),
        "rx": f.response.hex(" ").upper(),
        "ms": round(f.elapsed_ms, 1),
        "outcome": f.outcome,
    }
