"""Train the compressor detector on healthy simulated units and export it.

    simulate healthy units (both kinds, many seeds, days each)      models.dataset
      -> features with the agent's FeatureWindow (same code, same scorability rules)
      -> per-unit centring (each unit is its own normal, as on site)
      -> fleet scale (robust), PCA, T² and Q limits                 models.detector
      -> replay on-site calibration at several times of day per unit, with the agent's fit_normal,
         and set the score scale so healthy, freshly calibrated units sit well below 1.0
      -> ONNX + manifest                                            models.export

Deterministic: the simulator is seeded per unit, the fit is closed-form, eigenvector signs are pinned,
and nothing time-dependent goes into the files, so training twice gives the same bytes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge_agent.analytics.calibration import MIN_WINDOWS, fit_normal
from edge_agent.analytics.features import Timing
from edge_agent.analytics.presets import DEMO, WINDOW_SECONDS
from models.dataset import Regime, Unit, simulate_fleet
from models.detector import Detector, fit_subspace, robust_scale, t2_q
from models.export import ExportInfo, export
from models.simdata import KINDS

VERSION = "compressor-v1"
LIMIT_QUANTILE = 99.0  # percentile of healthy T² and Q that each counts as "1" in the combined index
SCORE_QUANTILE = 99.9  # percentile of healthy calibrated scores ...
SCORE_MARGIN = 2.5  # ... times this margin is the warning threshold (score 1.0)
CALIBRATIONS_PER_UNIT = 6  # replayed on-site calibrations per training unit, spread over its run


@dataclass(frozen=True)
class TrainConfig:
    seeds: int = 8  # per kind
    days: float = 4.0
    dt: float = 60.0  # simulated seconds per reading
    first_seed: int = 1000  # training seeds are disjoint from the evaluation seeds (0, 1, ...)
    window_seconds: float = WINDOW_SECONDS
    timing: Timing = field(default_factory=Timing)
    # The shortest calibration any preset uses, in machine seconds: the hardest case for the threshold.
    calibration_seconds: float = DEMO.calibration_readings * DEMO.seconds_per_reading
    version: str = VERSION

    @property
    def regime(self) -> Regime:
        return Regime(self.dt, self.window_seconds, self.timing)

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))


def fit(units: list[Unit], cfg: TrainConfig) -> tuple[Detector, dict[str, float]]:
    """Fit the detector to healthy units; also return fit statistics for the manifest."""
    centred = []
    for u in units:
        x = u.rows[u.scorable]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a feature never observed on a unit
            centred.append(x - np.nanmedian(x, axis=0))
    z = np.concatenate(centred)
    fleet_scale = robust_scale(z)
    # Round as the manifest stores it, so the agent and these limits see the same numbers.
    fleet_scale = np.array([float(f"{v:.9g}") for v in fleet_scale])
    zs = np.nan_to_num(z / fleet_scale, nan=0.0)
    components, eigenvalues = fit_subspace(zs)
    t2, q = t2_q(zs, components, eigenvalues)
    t2_limit = float(np.percentile(t2, LIMIT_QUANTILE))
    q_limit = float(np.percentile(q, LIMIT_QUANTILE))
    unit_limit = Detector(fleet_scale, components, eigenvalues, t2_limit, q_limit, 1.0)
    phi = calibrated_scores(units, unit_limit, cfg)
    score_limit = float(np.percentile(phi, SCORE_QUANTILE)) * SCORE_MARGIN
    det = Detector(fleet_scale, components, eigenvalues, t2_limit, q_limit, score_limit)
    stats = {
        "windows": len(z),
        "components": int(components.shape[1]),
        "variance_kept": round(float(eigenvalues.sum() / np.trace(zs.T @ zs / len(zs))), 4),
        "calibrated_windows": len(phi),
        "healthy_score_p99": round(float(np.percentile(phi, 99)) / score_limit, 4),
        "healthy_score_max": round(float(phi.max()) / score_limit, 4),
    }
    return det, stats


def calibrated_scores(units: list[Unit], det: Detector, cfg: TrainConfig) -> np.ndarray:
    """Combined index of every healthy window after replaying on-site calibration with the agent's code."""
    n_cal = max(cfg.regime.window + MIN_WINDOWS, math.ceil(cfg.calibration_seconds / cfg.dt))
    out = []
    for u in units:
        n = len(u.rows)
        for start in np.linspace(0, n - 2 * n_cal, CALIBRATIONS_PER_UNIT).astype(int):
            cal = u.rows[start : start + n_cal]
            cal = cal[~np.isnan(cal).all(axis=1)]
            if len(cal) < MIN_WINDOWS:
                continue
            normal = fit_normal(cal, det.fleet_scale)
            rest = u.rows[start + n_cal :]
            rest = rest[~np.isnan(rest).all(axis=1)]
            x = np.where(np.isnan(rest), normal.center, rest)
            out.append(det.score((x - normal.center) * normal.inv_scale))
    return np.concatenate(out)


def train(
    cfg: TrainConfig, out_dir: Path, progress: Callable[[str], None] | None = None
) -> tuple[Path, Path]:
    """Simulate, fit and export; returns the paths of the ``.onnx`` and the manifest."""
    units = simulate_fleet(KINDS, cfg.seed_list, cfg.days, cfg.regime, progress)
    det, stats = fit(units, cfg)
    training = {
        "source": "SignalCraft simulator physics (simulator.compressor), healthy units only",
        "kinds": list(KINDS),
        "seeds": cfg.seed_list,
        "days_per_unit": cfg.days,
        "config": asdict(cfg),
        "fit": stats,
    }
    return export(det, ExportInfo(cfg.version, cfg.window_seconds, cfg.timing, training), out_dir)
