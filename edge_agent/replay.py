"""What the uplink sends next: live readings first, the backlog after them at a bounded rate.

When the connection comes up, everything already buffered is *backlog*; everything produced after that is
*live*. Live records go out as soon as they exist, so the dashboard shows the present even while days of
backlog drain. The backlog goes oldest first, in batches of up to ``batch_max`` readings, no faster than
``replay_rate`` readings per second (a token bucket), so a site on a metered cellular link does not
saturate it after an outage. Each stream keeps the device's order; the collector orders by timestamp.

Records already in flight (handed to paho and not yet acknowledged) are never handed out again: paho
re-sends those itself after a reconnect. That is what keeps the live and replay paths from sending the
same reading twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from edge_agent.buffer import Buffer, Record


@dataclass(frozen=True, slots=True)
class Batch:
    records: list[Record]
    replay: bool  # from the backlog (counted as replayed)


class ReplayScheduler:
    def __init__(
        self, buffer: Buffer, batch_max: int, replay_rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.buffer = buffer
        self.batch_max = batch_max
        self.rate = replay_rate
        self.clock = clock
        self.boundary = 0  # ids up to here were buffered before the connection came up
        self.live_cursor = 0  # highest live id handed out
        self.backlog_cursor = 0  # highest backlog id handed out
        self._tokens = float(batch_max)
        self._refilled = clock()

    def on_connect(self) -> None:
        """A new connection: what is buffered now is backlog, to be walked again from the start."""
        self.boundary = self.buffer.max_id()
        self.live_cursor = self.boundary
        self.backlog_cursor = 0

    @property
    def backlog_pending(self) -> bool:
        return self.backlog_cursor < self.boundary

    def next_batch(self, inflight: Collection[int]) -> tuple[Batch | None, float | None]:
        """The next message's records, or (None, seconds to wait) — None seconds when nothing waits."""
        live = self._message(self.buffer.take(self.live_cursor, self.batch_max), inflight)
        if live:
            self.live_cursor = live[-1].id
            return Batch(live, replay=False), None
        if not self.backlog_pending:
            return None, None
        self._refill()
        if self._tokens < 1 - 1e-9:
            # Wait for a worthwhile batch (a tenth of a second's worth), not for every single token.
            want = min(float(self.batch_max), max(1.0, self.rate / 10))
            return None, (want - self._tokens) / self.rate
        limit = min(self.batch_max, max(1, int(self._tokens + 1e-9)))
        candidates = [
            r for r in self.buffer.take(self.backlog_cursor, limit + len(inflight)) if r.id <= self.boundary
        ]
        pending = [r for r in candidates if r.id not in inflight]
        if not pending:
            # Everything left of the backlog is in flight (or acknowledged meanwhile): done with it.
            self.backlog_cursor = candidates[-1].id if candidates else self.boundary
            return self.next_batch(inflight) if candidates else (None, None)
        batch = self._message(pending[:limit], ())
        self.backlog_cursor = batch[-1].id
        self._tokens -= len(batch)
        return Batch(batch, replay=True), None

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(float(self.batch_max), self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now

    @staticmethod
    def _message(records: list[Record], inflight: Collection[int]) -> list[Record]:
        """The records that fit one message: a state change alone, or a run of readings of one boot."""
        records = [r for r in records if r.id not in inflight]
        if not records:
            return []
        first = records[0]
        if first.kind != "telemetry":
            return [first]
        run = [first]
        for r in records[1:]:
            if r.kind != "telemetry" or r.boot != first.boot:
                break
            run.append(r)
        return run
