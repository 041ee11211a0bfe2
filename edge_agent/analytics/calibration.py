"""On-site calibration: learn this machine's normal from its first readings, persist it, resume it.

The shipped model knows how features vary *within* a healthy unit (the fleet scale and the correlation
structure); it cannot know where this unit's normal sits: its setpoint, its refrigerant charge, its
condenser's size, the room it stands in. Calibration collects the feature vectors of the scorable
windows among the first ``needed`` readings and turns them into a per-site centre (median) and scale
(the larger of the fleet scale and this site's own spread, so a naturally noisy unit does not alarm
on its noise). Those are fed to the ONNX graph as inputs.

Progress is written to ``<state_dir>/calibration.json`` every few percent and on completion, atomically
(temporary file + ``os.replace``), so a restart resumes where it stopped and a power cut never leaves
half a file. The file records which model, feature list and window it belongs to; a mismatch starts over.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE_NAME = "calibration.json"
FORMAT = 1
MAX_ROWS = 1000  # feature vectors kept; a long calibration keeps every k-th window (they overlap anyway)
MIN_WINDOWS = 5  # scorable windows needed before calibration may finish, however long it takes


@dataclass(frozen=True)
class SiteNormal:
    """This machine's normal: what the graph subtracts and multiplies by."""

    center: np.ndarray
    inv_scale: np.ndarray


class Calibration:
    """Collects calibration windows and produces the :class:`SiteNormal`, persisted under ``state_dir``."""

    def __init__(
        self,
        state_dir: Path,
        needed: int,
        identity: dict[str, object],
        fleet_scale: np.ndarray,
        with_std: bool = False,
        name: str = "calibration",
    ) -> None:
        if needed < 1:
            raise ValueError(f"calibration_readings must be positive, got {needed}")
        self.path = state_dir / (FILE_NAME if name == "calibration" else f"{name}.json")
        self.needed = needed
        self.identity = identity
        self.fleet_scale = fleet_scale
        self.with_std = with_std
        self.stride = max(1, -(-needed // MAX_ROWS))
        self.done = 0
        self.rows: list[list[float | None]] = []
        self.normal: SiteNormal | None = None
        self._save_every = max(1, needed // 20)
        self._load()

    @property
    def complete(self) -> bool:
        return self.normal is not None

    def reset(self) -> None:
        """Forget this site's normal and start learning it again (persisted at once)."""
        self.done = 0
        self.rows = []
        self.normal = None
        self.save()

    def add(self, features: np.ndarray | None) -> bool:
        """Count one reading; ``features`` is the window's vector when it is scorable. True on completion."""
        if self.complete:
            return False
        self.done += 1
        if features is not None and (self.done % self.stride == 0 or self.done >= self.needed):
            self.rows.append([None if np.isnan(v) else float(v) for v in features])
        if self.done >= self.needed and len(self.rows) >= MIN_WINDOWS:
            self.normal = fit_normal(np.array(self.rows, dtype=float), self.fleet_scale, self.with_std)
            self.save()
            return True
        if self.done % self._save_every == 0:
            self.save()
        return False

    def save(self) -> None:
        doc = {"format": FORMAT, "identity": self.identity, "done": self.done, "rows": self.rows}
        if self.normal is not None:
            doc["center"] = self.normal.center.tolist()
            doc["inv_scale"] = self.normal.inv_scale.tolist()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def _load(self) -> None:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (json.JSONDecodeError, UnicodeDecodeError):
            return  # unreadable: a fresh calibration is the safe answer (os.replace makes this rare)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("identity") != self.identity:
            return  # another model, feature list or window: that normal does not apply
        self.done = int(doc.get("done", 0))
        self.rows = list(doc.get("rows", []))
        if "center" in doc and "inv_scale" in doc:
            self.normal = SiteNormal(
                center=np.array(doc["center"], dtype=np.float32),
                inv_scale=np.array(doc["inv_scale"], dtype=np.float32),
            )


def fit_normal(rows: np.ndarray, fleet_scale: np.ndarray, with_std: bool = False) -> SiteNormal:
    """Centre and inverse scale from calibration feature vectors (rows; NaN = feature not observed).

    A feature never observed during calibration (e.g. no off-cycle because the unit ran throughout) is
    switched off for this site (inverse scale 0) rather than compared with someone else's normal.
    ``with_std`` (generic channel models, which have no fleet scale to lean on) also takes the standard
    deviation as a lower bound of the scale: the MAD of a quantised reading can be zero.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are handled below
        center = np.nanmedian(rows, axis=0)
        mad = np.nanmedian(np.abs(rows - center), axis=0)
        std = np.nanstd(rows, axis=0) if with_std else np.zeros_like(center)
    site_scale = np.maximum(1.4826 * np.nan_to_num(mad, nan=0.0), np.nan_to_num(std, nan=0.0))
    scale = np.maximum(fleet_scale, site_scale)
    # Nothing measured is exact: a scale of zero (a feature constant through calibration) would make
    # the first rounding difference infinite.
    scale = np.maximum(scale, 1e-6 * (np.abs(np.nan_to_num(center, nan=0.0)) + 1.0))
    seen = np.isfinite(center)
    inv_scale = np.where(seen, 1.0 / scale, 0.0)
    return SiteNormal(
        center=np.where(seen, center, 0.0).astype(np.float32),
        inv_scale=inv_scale.astype(np.float32),
    )
