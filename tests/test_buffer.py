from __future__ import annotations

from pathlib import Path

from edge_agent.buffer import Buffer


def test_records_survive_reopen_and_leave_only_when_deleted(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite3", max_bytes=1 << 20)
    ids = [buf.add("telemetry", "b" * 32, f'{{"seq":{i}}}'.encode()) for i in range(10)]
    buf.delete(ids[:4])
    buf.close()
    again = Buffer(tmp_path / "b.sqlite3", max_bytes=1 << 20)
    assert again.count == 6
    assert [r.id for r in again.take(0, 100)] == ids[4:]
    assert again.take(ids[7], 100)[0].id == ids[8]
    assert again.bytes == sum(len(r.body) for r in again.take(0, 100))


def test_full_buffer_drops_oldest_and_counts_them(tmp_path: Path) -> None:
    cap = 1 << 20
    buf = Buffer(tmp_path / "b.sqlite3", max_bytes=cap)
    body = b"x" * 400
    largest = acked = 0
    for i in range(6000):  # 2.4 MB of readings into a 1 MiB buffer, the uplink taking a few meanwhile
        buf.add("telemetry", "b" * 32, body)
        if i % 10 == 0:
            taken = [r.id for r in buf.take(0, 2)]
            buf.delete(taken)
            acked += len(taken)
            largest = max(largest, sum(f.stat().st_size for f in tmp_path.iterdir()))
    assert largest <= cap  # database, write-ahead log and its index together
    assert buf.count == buf.bytes // 400
    assert buf.counter("dropped_full") == 6000 - acked - buf.count > 0
    assert buf.take(0, 10_000)[-1].id == 6000  # the newest record is always kept
