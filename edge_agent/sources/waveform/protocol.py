"""The waveform frame codec (docs/serial-protocol.md): sync word, header, samples, CRC-32.

    offset size  field
    0      2     sync        A5 5A
    2      1     version     1
    3      1     format      1 = int16, 2 = int32, 3 = float32 (little-endian samples)
    4      1     channels    1..8, samples interleaved (ch0, ch1, …, ch0, …)
    5      1     flags       bit 0: overload (the ADC clipped in this frame); other bits 0
    6      2     samples     per channel in this frame, 1..4096           (uint16 LE)
    8      4     rate        samples per second per channel, 1..200000   (uint32 LE)
    12     4     seq         frame counter, +1 per frame, wraps at 2^32  (uint32 LE)
    16     n     payload     samples × channels × sample size
    16+n   4     crc         CRC-32 (IEEE 802.3, as zlib.crc32) of bytes 2 … 15+n (uint32 LE)

:class:`FrameParser` is a streaming parser: feed it whatever the port returned, get whole frames back.
It hunts for the sync word, checks the header's plausibility before waiting for a payload (so a false
sync inside a payload cannot stall it on a huge bogus length), and on a CRC mismatch skips one byte and
hunts again, so the next real frame is found even when the bad one was a false sync.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

SYNC = b"\xa5\x5a"
VERSION = 1
HEADER = struct.Struct("<2sBBBBHII")  # 16 bytes
CRC = struct.Struct("<I")
FORMATS: dict[int, tuple[str, float]] = {  # code -> (numpy dtype, full scale)
    1: ("<i2", 32768.0),
    2: ("<i4", 2147483648.0),
    3: ("<f4", 1.0),
}
FORMAT_CODES = {"int16": 1, "int32": 2, "float32": 3}
MAX_CHANNELS = 8
MAX_SAMPLES = 4096
MAX_RATE = 200_000
FLAG_OVERLOAD = 0x01


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    rate: int
    channels: int
    samples: np.ndarray  # float32, shape (n, channels), full scale = ±1.0 for integer formats
    overload: bool
    # Frames lost just before this one (-1: the sender restarted). Carried on the frame, not the parser:
    # one read can return several frames, and the hole belongs to the frame that follows it.
    gap: int = 0


def encode_frame(
    seq: int, samples: np.ndarray, rate: int, fmt: str = "int16", overload: bool = False
) -> bytes:
    """One frame from ``samples`` (shape (n, channels), full scale ±1.0 for integer formats)."""
    code = FORMAT_CODES[fmt]
    dtype, scale = FORMATS[code]
    data = np.asarray(samples, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    n, channels = data.shape
    if code != 3:
        info = np.iinfo(np.dtype(dtype))
        data = np.clip(np.round(data * scale), info.min, info.max)
    payload = data.astype(dtype).tobytes()
    head = HEADER.pack(
        SYNC, VERSION, code, channels, FLAG_OVERLOAD if overload else 0, n, rate, seq & 0xFFFFFFFF
    )
    return head + payload + CRC.pack(zlib.crc32(head[2:] + payload))


class FrameParser:
    """Streaming decoder with resynchronisation and loss accounting."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._expect: int | None = None  # next sequence number
        self.frames = 0
        self.crc_errors = 0
        self.skipped_bytes = 0  # bytes thrown away while hunting for a sync word
        self.lost = 0  # frames missing according to the sequence numbers
        self.restarts = 0  # the sender's counter jumped backwards (it rebooted)

    def reset_sequence(self) -> None:
        """After a reconnect, the next frame starts a new run: its gap is not counted as loss."""
        self._expect = None
        self._buf.clear()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        buf = self._buf
        while True:
            at = buf.find(SYNC)
            if at < 0:
                keep = 1 if buf.endswith(SYNC[:1]) else 0
                self.skipped_bytes += len(buf) - keep
                del buf[: len(buf) - keep]
                break
            if at:
                self.skipped_bytes += at
                del buf[:at]
            if len(buf) < HEADER.size:
                break
            _, version, fmt, channels, _flags, n, rate, _seq = HEADER.unpack_from(buf)
            if (
                version != VERSION
                or fmt not in FORMATS
                or not 1 <= channels <= MAX_CHANNELS
                or not 1 <= n <= MAX_SAMPLES
                or not 1 <= rate <= MAX_RATE
            ):
                self._skip_one()
                continue
            size = HEADER.size + n * channels * np.dtype(FORMATS[fmt][0]).itemsize + CRC.size
            if len(buf) < size:
                break
            (crc,) = CRC.unpack_from(buf, size - CRC.size)
            if zlib.crc32(memoryview(buf)[2 : size - CRC.size]) != crc:
                self.crc_errors += 1
                self._skip_one()
                continue
            out.append(self._frame(bytes(buf[:size])))
            del buf[:size]
        return out

    def _skip_one(self) -> None:
        self.skipped_bytes += 1
        del self._buf[:1]

    def _frame(self, raw: bytes) -> Frame:
        _, _, fmt, channels, flags, n, rate, seq = HEADER.unpack_from(raw)
        dtype, scale = FORMATS[fmt]
        samples = np.frombuffer(raw, dtype=dtype, count=n * channels, offset=HEADER.size)
        samples = (samples.astype(np.float32) / np.float32(scale)).reshape(n, channels)
        gap = 0
        if self._expect is not None and seq != self._expect:
            gap = (seq - self._expect) & 0xFFFFFFFF
            if gap < 0x80000000:
                self.lost += gap
            else:
                self.restarts += 1
                gap = -1  # a new run: not comparable with the previous one
        self._expect = (seq + 1) & 0xFFFFFFFF
        self.frames += 1
        return Frame(seq, rate, channels, samples, bool(flags & FLAG_OVERLOAD), gap)
