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
    buf = Buffer(tmp_path / "b.sqlite3", max_bytes=65536)
    body = b"x" * 1000
    for _ in range(200):
        buf.add("telemetry", "b" * 32, body)
    assert buf.bytes <= 65536
    assert buf.count == buf.bytes // 1000
    assert buf.counter("dropped_full") == 200 - buf.count
    newest = buf.take(0, 1000)[-1].id
    assert newest == 200  # the newest record is always kept
