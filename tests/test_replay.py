"""The replay scheduler on a real buffer: live first, backlog in order at a bounded rate, no double sends."""

from __future__ import annotations

from pathlib import Path

from edge_agent.buffer import Buffer
from edge_agent.replay import ReplayScheduler

BOOT = "a" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _drain(sched: ReplayScheduler, clock: Clock, inflight: set[int] | None = None) -> list[list[int]]:
    """Every batch the scheduler hands out, letting the clock run when the rate asks to wait."""
    out = []
    while True:
        batch, wait = sched.next_batch(inflight or set())
        if batch is None:
            if wait is None:
                return out
            clock.now += wait
            continue
        out.append([r.id for r in batch.records])


def _fill(buf: Buffer, n: int, kind: str = "telemetry", boot: str = BOOT) -> list[int]:
    return [buf.add(kind, boot, b"{}") for _ in range(n)]


def test_live_goes_before_the_backlog(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite3", 1 << 24)
    backlog = _fill(buf, 300)
    clock = Clock()
    sched = ReplayScheduler(buf, batch_max=100, replay_rate=1000.0, clock=clock)
    sched.on_connect()
    live = _fill(buf, 2)
    first, _ = sched.next_batch(set())
    assert first is not None and not first.replay and [r.id for r in first.records] == live
    sent = [i for batch in _drain(sched, clock) for i in batch]
    assert sent == backlog  # oldest first, each once
    assert clock.now - 100.0 >= 0.199  # 300 readings at 1000/s, the first 100 from a full bucket


def test_backlog_rate_is_bounded(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite3", 1 << 24)
    _fill(buf, 500)
    clock = Clock()
    sched = ReplayScheduler(buf, batch_max=50, replay_rate=100.0, clock=clock)
    sched.on_connect()
    batch, _ = sched.next_batch(set())
    assert batch is not None and len(batch.records) == 50  # a full bucket
    batch, wait = sched.next_batch(set())
    assert batch is None and wait is not None and abs(wait - 0.1) < 1e-6  # a tenth of a second's worth
    clock.now += 0.2  # 20 readings' worth of tokens
    batch, _ = sched.next_batch(set())
    assert batch is not None and len(batch.records) == 20


def test_records_in_flight_are_not_handed_out_again(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite3", 1 << 24)
    ids = _fill(buf, 30)
    clock = Clock()
    sched = ReplayScheduler(buf, batch_max=10, replay_rate=1e6, clock=clock)
    sched.on_connect()
    inflight = set(ids[:10])  # paho re-sends these itself after the reconnect
    seen = [i for batch in _drain(sched, clock, inflight) for i in batch]
    assert seen == ids[10:]


def test_a_message_never_mixes_boots_or_kinds(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite3", 1 << 24)
    a = _fill(buf, 3)
    s = _fill(buf, 1, kind="state")
    b = _fill(buf, 2, boot="b" * 32)
    clock = Clock()
    sched = ReplayScheduler(buf, batch_max=100, replay_rate=1e6, clock=clock)
    sched.on_connect()
    assert _drain(sched, clock) == [a, s, b]
