"""A simulated waveform sensor: a microcontroller streaming the compressor's vibration over a pty.

Frames follow docs/serial-protocol.md (the agent's :mod:`edge_agent.sources.waveform.protocol` is the
reference codec). The signal is the compressor's signature, continuous from frame to frame:

- running: mains-locked vibration at the line frequency and its harmonics (60/120/180 Hz by default);
  stopped: only the sensor's noise floor;
- ``bearing_wear``: impacts repeating at the outer-race defect frequency (~3.6 × shaft speed), ringing a
  structural resonance at 1.5 kHz: energy in the 500-2000 Hz band;
- ``refrigerant_leak``: hiss, band-limited noise between 2 and 8 kHz;
- ``electrical_imbalance``: a raised twice-line-frequency (120 Hz) component.

Link faults (:class:`LinkFaults`): corrupted bytes, dropped frames (the sequence number still advances, as
when a USB packet is lost) and garbage between frames; ``unplug()``/``plug()`` make the device vanish and
come back. Frames are paced in real time by a sleeping thread.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_agent.sources.waveform.protocol import encode_frame
from simulator.ptyport import Pty

FAULTS = ("bearing_wear", "refrigerant_leak", "electrical_imbalance")


@dataclass
class LinkFaults:
    corrupt_rate: float = 0.0  # frames with one byte flipped
    drop_rate: float = 0.0  # frames never sent (their sequence numbers are skipped)
    garbage_rate: float = 0.0  # frames preceded by 1-40 random bytes
    seed: int = 0


class Signature:
    """The compressor's vibration, sample-continuous across calls."""

    def __init__(
        self,
        rate: int,
        mains_hz: float = 60.0,
        fault: str | None = None,
        severity: float = 1.0,
        seed: int = 0,
    ) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (one of {', '.join(FAULTS)})")
        self.rate, self.mains, self.fault, self.severity = rate, mains_hz, fault, severity
        self.running = True
        self._n = 0
        self._rng = np.random.default_rng(seed)

    def next(self, n: int) -> np.ndarray:
        t = (self._n + np.arange(n)) / self.rate
        self._n += n
        x = 0.01 * self._rng.standard_normal(n)
        if not self.running:
            return x
        f = self.mains
        second = 0.08 * (1 + 3 * self.severity * (self.fault == "electrical_imbalance"))
        x += 0.2 * np.sin(2 * np.pi * f * t) + second * np.sin(2 * np.pi * 2 * f * t + 0.3)
        x += 0.04 * np.sin(2 * np.pi * 3 * f * t + 1.1)
        if self.fault == "bearing_wear":
            bpfo = 3.6 * (f - 1.0)  # outer-race defect frequency of a ~59 Hz shaft
            phase = (t * bpfo) % 1.0
            x += 0.3 * self.severity * np.exp(-phase * 40) * np.sin(2 * np.pi * 1500 * t)
        if self.fault == "refrigerant_leak" and self.rate > 4000:
            spec = np.fft.rfft(self._rng.standard_normal(n))
            freqs = np.fft.rfftfreq(n, 1 / self.rate)
            spec[(freqs < 2000) | (freqs > 8000)] = 0
            hiss = np.fft.irfft(spec, n)
            x += 0.1 * self.severity * hiss / (float(np.std(hiss)) or 1.0)
        return x


class WaveformEmitter:
    """Streams frames on a pty (``port``; a stable symlink when ``link`` is given) until :meth:`stop`."""

    def __init__(
        self,
        rate: int = 8000,
        frame_samples: int = 256,
        *,
        fault: str | None = None,
        severity: float = 1.0,
        mains_hz: float = 60.0,
        fmt: str = "int16",
        faults: LinkFaults | None = None,
        link: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        self.rate, self.frame_samples, self.fmt = rate, frame_samples, fmt
        self.signature = Signature(rate, mains_hz, fault, severity, seed)
        self.faults = faults or LinkFaults()
        self.sent = 0
        self.dropped = 0  # by the fault injection
        self.unread = 0  # nobody read the port fast enough: the frame was lost
        self.seq = 0
        self._rng = random.Random(self.faults.seed)
        self._link = Path(link) if link else None
        self._pty: Pty | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.port = ""
        self.plug()
        self._thread = threading.Thread(target=self._run, name="sim-waveform", daemon=True)
        self._thread.start()

    def plug(self) -> None:
        with self._lock:
            if self._pty is not None:
                return
            self._pty = Pty.open()
            if self._link is None:
                self.port = self._pty.path
                return
            tmp = self._link.with_name(self._link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._pty.path)
            tmp.replace(self._link)
            self.port = str(self._link)

    def unplug(self) -> None:
        with self._lock:
            if self._pty is None:
                return
            if self._link is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._link.unlink()
            self._pty.close()
            self._pty = None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.unplug()

    def __enter__(self) -> WaveformEmitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        period = self.frame_samples / self.rate
        due = time.monotonic()
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            due += period
            samples = self.signature.next(self.frame_samples)
            frame = encode_frame(
                self.seq, samples, self.rate, self.fmt, overload=bool(np.abs(samples).max() >= 1)
            )
            self.seq += 1
            f = self.faults
            if f.drop_rate and self._rng.random() < f.drop_rate:
                self.dropped += 1
                continue
            if f.corrupt_rate and self._rng.random() < f.corrupt_rate:
                i = self._rng.randrange(len(frame))
                frame = frame[:i] + bytes([frame[i] ^ 0x5A]) + frame[i + 1 :]
            if f.garbage_rate and self._rng.random() < f.garbage_rate:
                frame = bytes(self._rng.randrange(256) for _ in range(self._rng.randint(1, 40))) + frame
            self._write(frame)

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._pty is None:
                return
            try:
                os.write(self._pty.master_fd, data)
                self.sent += 1
            except BlockingIOError:
                self.unread += 1
            except OSError:
                pass  # unplugged between the check and the write
