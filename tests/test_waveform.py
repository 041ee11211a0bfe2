"""The serial waveform protocol, the reader (resync, loss counting, reconnect) and the simulated sensor."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_agent.sources.waveform.protocol import HEADER, FrameParser, encode_frame
from edge_agent.sources.waveform.reader import WaveformSource, WaveformWindow, deliver
from simulator.waveform import LinkFaults, Signature, WaveformEmitter


def _wait(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@pytest.mark.parametrize("fmt", ["int16", "int32", "float32"])
def test_frame_round_trip(fmt: str) -> None:
    samples = np.stack([np.linspace(-0.9, 0.9, 64), np.linspace(0.5, -0.5, 64)], axis=1)
    raw = encode_frame(7, samples, 16000, fmt)
    assert raw[:2] == b"\xa5\x5a" and len(raw) == HEADER.size + samples.size * {"int16": 2}.get(fmt, 4) + 4
    assert int.from_bytes(raw[-4:], "little") == zlib.crc32(raw[2:-4])
    [frame] = FrameParser().feed(raw)
    assert (frame.seq, frame.rate, frame.channels) == (7, 16000, 2)
    np.testing.assert_allclose(frame.samples, samples, atol=1 / 32768)


def test_documented_example_frame() -> None:
    # The example in docs/serial-protocol.md: seq 1, 8000 Hz, one int16 channel, samples 0, 16384, -16384.
    raw = encode_frame(1, np.array([0.0, 0.5, -0.5]), 8000)
    assert raw.hex(" ") == "a5 5a 01 01 01 00 03 00 40 1f 00 00 01 00 00 00 00 00 00 40 00 c0 " + raw[
        -4:
    ].hex(" ")
    assert raw[-4:].hex(" ") == "d0 82 38 ad"


def test_parser_resynchronises_after_garbage_and_corruption_even_byte_by_byte() -> None:
    good = [encode_frame(i, np.full(32, i / 10), 8000) for i in range(6)]
    bad = bytearray(good[2])
    bad[30] ^= 0xFF  # payload corrupted: CRC mismatch
    stream = (
        b"\x00\xa5junk\xa5\x5a\x07"
        + good[0]
        + good[1]
        + bytes(bad)
        + b"\xa5\x5a"
        + good[3]
        + good[4]
        + good[5]
    )
    for chunk in (len(stream), 1, 7):
        parser = FrameParser()
        frames = [f for i in range(0, len(stream), chunk) for f in parser.feed(stream[i : i + chunk])]
        assert [f.seq for f in frames] == [0, 1, 3, 4, 5]
        assert parser.crc_errors == 1 and parser.lost == 1 and parser.skipped_bytes > 0


def test_sequence_numbers_count_losses_wraps_and_restarts() -> None:
    parser = FrameParser()
    seqs = [2**32 - 2, 2**32 - 1, 0, 3, 4, 0, 1]  # wrap, 2 lost, then the sender reboots
    frames = parser.feed(b"".join(encode_frame(s, np.zeros(4), 1000) for s in seqs))
    assert len(frames) == 7 and parser.lost == 2 and parser.restarts == 1


@pytest.mark.parametrize("reads", ["one read per frame", "all in one read"])
def test_a_window_never_spans_a_hole_however_the_frames_arrive(reads: str) -> None:
    """A reader that fell behind gets many frames from one read; the hole belongs to the frame after it,
    not to the last frame of the batch."""
    seqs = [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11]  # frame 2 lost
    raw = [encode_frame(s, np.full(100, s / 100), 1000) for s in seqs]
    src = WaveformSource("vib", "/dev/null", window=0.4)  # 400 samples: four frames a window
    chunks = [b"".join(raw)] if reads == "all in one read" else raw
    for chunk in chunks:  # what the reader thread does with each read (WaveformSource._stream)
        for frame in src.parser.feed(chunk):
            src._take(frame)
    windows = src.poll()
    frames_in = [sorted({round(float(v) * 100) for v in w.samples[:, 0]}) for w in windows]
    assert frames_in == [[3, 4, 5, 6], [7, 8, 9, 10]]
    assert [w.first_seq for w in windows] == [3, 7]
    assert src.windows_discarded == 1 and src.parser.lost == 1


def test_signature_puts_each_fault_in_its_band() -> None:
    def band(fault: str | None, lo: float, hi: float) -> float:
        x = Signature(16000, fault=fault, seed=1).next(16000)
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / 16000)
        return float(spec[(f >= lo) & (f < hi)].sum())

    assert band("bearing_wear", 500, 2000) > 5 * band(None, 500, 2000)
    assert band("refrigerant_leak", 2000, 8000) > 20 * band(None, 2000, 8000)
    assert band("electrical_imbalance", 110, 130) > 5 * band(None, 110, 130)


def test_reader_delivers_gapless_windows_and_counts_what_the_line_lost(tmp_path: Path) -> None:
    faults = LinkFaults(corrupt_rate=0.05, drop_rate=0.05, garbage_rate=0.05, seed=3)
    with WaveformEmitter(rate=8000, frame_samples=200, faults=faults, fault="bearing_wear") as sim:
        src = WaveformSource("vib", sim.port, window=0.1)
        src.start()
        try:
            _wait(lambda: src.parser.frames > 100 and src.parser.lost >= 5, timeout=10)
            windows = src.poll()
        finally:
            src.stop()
    status = src.status_dict()
    assert status["sample_rate"] == 8000 and status["channels"] == 1
    assert status["crc_errors"] >= 1 and status["skipped_bytes"] > 0
    # Every loss the sender made is seen: dropped frames plus frames whose corruption broke their CRC or
    # their sync word (those are lost too, as far as the sequence numbers can tell).
    assert status["lost_frames"] >= sim.dropped
    assert status["windows_discarded"] >= 1  # a window is cut short at each hole, never stitched
    assert windows and all(w.samples.shape == (800, 1) and w.sample_rate == 8000 for w in windows)
    assert all(w.samples.dtype == np.float32 and np.abs(w.samples).max() <= 1 for w in windows)


def test_reader_survives_the_device_disappearing_and_coming_back(tmp_path: Path) -> None:
    with WaveformEmitter(rate=4000, frame_samples=100, link=tmp_path / "ttyACM0") as sim:
        src = WaveformSource("mic", sim.port, window=0.05)
        src.start()
        try:
            _wait(lambda: src.state == "streaming")
            sim.unplug()
            _wait(lambda: src.state == "disconnected")
            assert "serial port" in src.status_dict()["detail"]
            time.sleep(0.3)
            sim.plug()
            _wait(lambda: src.state == "streaming" and src.reconnects == 1)
            src.poll()
            _wait(lambda: len(src._queue) > 0)
        finally:
            src.stop()
    assert src.status_dict()["state"] == "stopped"


class _Analytics:
    def __init__(self) -> None:
        self.seen: list[WaveformWindow] = []

    def observe_waveform(self, window: WaveformWindow) -> None:
        self.seen.append(window)


def test_windows_reach_analytics_that_want_them_and_are_drained_otherwise() -> None:
    with WaveformEmitter(rate=2000, frame_samples=100) as sim:
        src = WaveformSource("vib", sim.port, window=0.1)
        src.start()
        try:
            _wait(lambda: len(src._queue) >= 2)
            analytics = _Analytics()
            assert deliver([src], analytics) >= 2 and analytics.seen[0].source == "vib"
            _wait(lambda: len(src._queue) >= 1)
            assert deliver([src], object()) == 0 and src.poll() == []
        finally:
            src.stop()
