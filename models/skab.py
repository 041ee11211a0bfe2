"""SKAB benchmark: the agent's own calibration + detection path on the Skoltech water-pump testbed.

Leaderboard protocol (the data set's README): per experiment file, the first ``CALIBRATION_ROWS`` rows
are for fitting (assumed normal), the remaining rows are scored; confusion counts are pooled over all
files; F1 = TP / (TP + (FN + FP) / 2), FAR = FP / (FP + TN) %, MAR = FN / (FN + TP) %.

What runs is :class:`edge_agent.analytics.Analytics` with the ``pump-v1`` model, one reading per row:
the first 400 rows calibrate this "site" (the file), then every row is scored by onnxruntime and goes
through the debounced health state. A row counts as flagged when the state is WARNING or ALARM: what a
technician would be told, not a raw score. The labels are read only to count; one configuration serves
every file. The data are not shipped with SignalCraft (GPL-3.0): pass the folder.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from common.schema import HealthState
from edge_agent.analytics import Analytics

CALIBRATION_ROWS = 400
FLAGGED = (HealthState.WARNING, HealthState.ALARM)
LABEL = "anomaly"
IGNORED = ("datetime", "anomaly", "changepoint")


@dataclass(frozen=True)
class Recording:
    name: str  # path relative to the benchmark folder
    channels: tuple[str, ...]
    values: np.ndarray  # (rows, channels)
    labels: np.ndarray  # (rows,) 0/1


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, flagged: np.ndarray, labels: np.ndarray) -> None:
        y = labels.astype(bool)
        self.tp += int(np.sum(flagged & y))
        self.fp += int(np.sum(flagged & ~y))
        self.fn += int(np.sum(~flagged & y))
        self.tn += int(np.sum(~flagged & ~y))

    def metrics(self) -> dict[str, float]:
        f1 = self.tp / (self.tp + (self.fn + self.fp) / 2) if self.tp + self.fn + self.fp else 1.0
        far = 100 * self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0
        mar = 100 * self.fn / (self.fn + self.tp) if self.fn + self.tp else 0.0
        return {"f1": round(f1, 4), "far": round(far, 2), "mar": round(mar, 2)}


@dataclass
class FileResult:
    name: str
    rows: int
    counts: Counts
    first_flag: int | None  # scored rows from the first anomalous row to the first flagged one
    scores: list[float | None] = field(repr=False, default_factory=list)


def find_files(root: Path) -> list[Path]:
    """Every ``*.csv`` under ``root`` except the anomaly-free recording, in a stable order."""
    if not root.is_dir():
        raise FileNotFoundError(f"SKAB folder not found: {root}")
    files = [p for p in sorted(root.rglob("*.csv")) if "anomaly-free" not in p.relative_to(root).as_posix()]
    if not files:
        raise FileNotFoundError(f"no SKAB-format CSV files under {root}")
    return files


def load(path: Path, root: Path | None = None) -> Recording:
    """One SKAB CSV (``;``-separated, header row, ``anomaly`` column)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter=";")
        header = next(reader)
        rows = [r for r in reader if r]
    if LABEL not in header:
        raise ValueError(f"{path}: no {LABEL!r} column")
    cols = [i for i, h in enumerate(header) if h not in IGNORED]
    values = np.array([[float(r[i]) for i in cols] for r in rows])
    labels = np.array([float(r[header.index(LABEL)]) for r in rows]).astype(np.int8)
    name = path.relative_to(root).as_posix() if root else path.name
    return Recording(name, tuple(header[i] for i in cols), values, labels)


def replay(rec: Recording, model_dir: Path | None) -> Iterator[tuple[float | None, HealthState]]:
    """Feed a recording row by row to a fresh :class:`Analytics` (one reading per row)."""
    ts = datetime(2020, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as state:
        a = Analytics(model_dir, Path(state), calibration_readings=CALIBRATION_ROWS)
        for row in rec.values:
            v = a.observe(ts, dict(zip(rec.channels, row.tolist(), strict=True)), [])
            yield v.score, v.state


def score_file(rec: Recording, model_dir: Path | None) -> FileResult:
    states = []
    scores = []
    for score, state in replay(rec, model_dir):
        scores.append(score)
        states.append(state in FLAGGED)
    flagged = np.array(states[CALIBRATION_ROWS:], dtype=bool)
    labels = rec.labels[CALIBRATION_ROWS:]
    counts = Counts()
    counts.add(flagged, labels)
    first_flag = None
    anomalous = np.flatnonzero(labels)
    if anomalous.size:
        hits = np.flatnonzero(flagged[anomalous[0] :])
        first_flag = int(hits[0]) if hits.size else None
    return FileResult(rec.name, len(rec.values), counts, first_flag, scores[CALIBRATION_ROWS:])


def benchmark(
    root: Path, model_dir: Path | None, progress: Callable[[str], None] | None = None
) -> tuple[dict[str, float], list[FileResult]]:
    """Pooled metrics over every file under ``root`` and the per-file results."""
    results = []
    for path in find_files(root):
        results.append(score_file(load(path, root), model_dir))
        if progress:
            progress(results[-1].name)
    return {**pool(results), "files": len(results)}, results


def pool(results: list[FileResult]) -> dict[str, float]:
    """The leaderboard's pooled confusion matrix over files, as F1 / FAR % / MAR %."""
    c = Counts()
    for r in results:
        c.tp += r.counts.tp
        c.fp += r.counts.fp
        c.fn += r.counts.fn
        c.tn += r.counts.tn
    return c.metrics()
