"""Nothing lost, nothing doubled: the uplink under broker outages, SIGKILLs during replay and a full buffer.

The proof for each boot of the agent: the sequence numbers in PostgreSQL plus those still in the agent's
buffer are exactly 0..N-1 (nothing lost), and PostgreSQL holds each once (rows = distinct keys).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.delivery_rig import Rig

pytestmark = pytest.mark.e2e


@pytest.fixture
def rig(tmp_path: Path, pg_url: str):
    r = Rig(tmp_path, pg_url)
    yield r
    r.close()


def assert_exactly_once(rig: Rig) -> int:
    stored, rows, distinct = rig.stored()
    buffered = rig.buffered()
    assert rows == distinct, f"{rows - distinct} duplicate rows in PostgreSQL"
    total = 0
    for boot in set(stored) | set(buffered):
        seqs = set(stored.get(boot, ())) | buffered.get(boot, set())
        assert seqs == set(range(max(seqs) + 1)), f"boot {boot[:8]} lost {set(range(max(seqs) + 1)) - seqs}"
        total += len(seqs)
    return total


def test_sixty_second_broker_outage_loses_nothing(rig: Rig) -> None:
    rig.start_agent()
    rig.wait(lambda: (s := rig.status()) and s["delivery"]["acked"] > 20, 30, "first readings delivered")
    rig.broker.pause()
    time.sleep(60)
    during = rig.status()
    assert during is not None and during["delivery"]["buffered"] > 300  # 10 readings/s kept on disk
    rig.broker.resume()
    rig.wait(
        lambda: (s := rig.status()) and s["delivery"]["buffered"] < 5 and s["delivery"]["replayed"] > 0,
        90,
        "backlog drained",
    )
    rig.stop_agent()
    rig.wait(lambda: assert_exactly_once_quiet(rig), 30, "collector caught up")
    total = assert_exactly_once(rig)
    assert total >= 600  # 10 readings a second, most of them during the outage


def assert_exactly_once_quiet(rig: Rig) -> bool:
    stored, rows, distinct = rig.stored()
    buffered = rig.buffered()
    return rows == distinct and all(
        (set(stored.get(b, ())) | buffered.get(b, set()))
        == set(range(max(set(stored.get(b, ())) | buffered.get(b, set())) + 1))
        for b in set(stored) | set(buffered)
    )


def test_sigkill_during_replay_ten_times(tmp_path: Path, pg_url: str) -> None:
    # A slow replay (100 readings/s, 20 per message) so that every kill lands in the middle of one.
    rig = Rig(tmp_path, pg_url, extra="")
    rig.config.write_text(
        rig.config.read_text().replace("[mqtt]\n", "[mqtt]\nreplay_rate = 100\nbatch_max = 20\n")
    )
    rng = random.Random(20261126)
    try:
        rig.start_agent()
        rig.broker.pause()
        time.sleep(8)  # ~80 readings of backlog
        rig.broker.resume()
        for _ in range(10):
            rig.wait(lambda: (s := rig.status()) and s["delivery"]["connected"], 30, "agent connected")
            time.sleep(rng.uniform(0.2, 1.5))
            rig.kill_agent()
            rig.start_agent()
        rig.wait(lambda: (s := rig.status()) and s["delivery"]["buffered"] < 5, 90, "backlog drained")
        rig.stop_agent()
        try:
            rig.wait(lambda: assert_exactly_once_quiet(rig), 30, "collector caught up")
        except AssertionError:
            assert_exactly_once(rig)  # says what is wrong
            raise
        stored, _, _ = rig.stored()
        assert len(stored) == 11  # one boot per start, each delivered
        assert_exactly_once(rig)
    finally:
        rig.close()


def test_full_buffer_drops_oldest_and_the_cloud_sees_the_gap(tmp_path: Path, pg_url: str) -> None:
    rig = Rig(tmp_path, pg_url, poll="20ms", extra="\n[buffer]\nmax_bytes = 1048576\n")
    try:
        rig.start_agent()
        rig.wait(lambda: (s := rig.status()) and s["delivery"]["acked"] > 20, 30, "first readings delivered")
        rig.broker.pause()
        largest = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            s = rig.status()
            largest = max(largest, sum(f.stat().st_size for f in rig.state.glob("buffer.sqlite3*")))
            if s and s["delivery"]["dropped_by_reason"]["buffer_full"] > 200:
                break
            time.sleep(0.5)
        assert largest <= 1048576
        assert rig.agent is not None and rig.agent.poll() is None  # still running
        rig.broker.resume()
        rig.wait(lambda: (s := rig.status()) and s["delivery"]["buffered"] < 20, 90, "backlog drained")
        rig.stop_agent()
        time.sleep(2)
        stored, rows, distinct = rig.stored()
        assert rows == distinct
        (boot,) = stored
        seqs = set(stored[boot]) | rig.buffered().get(boot, set())
        lost = set(range(max(seqs) + 1)) - seqs
        assert len(lost) > 200  # the oldest of the outage, dropped and counted
        assert min(lost) > 0 and max(lost) < max(
            seqs
        )  # a gap in the middle: before it, and the newest, arrived
    finally:
        rig.close()
