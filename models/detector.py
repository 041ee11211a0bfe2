"""The detector: robust standardisation + PCA with Hotelling's T² and the residual Q (SPE) statistic.

Why PCA and not an autoencoder or a forest: the healthy variation of a refrigeration circuit is
dominated by a few physical drivers (ambient temperature, cabinet load, frost on the coil) that move
many features together and almost linearly, which is exactly what a handful of principal components
capture. T² measures how far along those healthy directions a window is (an unusually hot afternoon);
Q measures how far it is *off* them (discharge pressure up without the ambient that would explain
it: a fouled condenser). Both are closed-form, trained in milliseconds from numpy, exported as three
small matrix products, and each decomposes exactly into per-feature contributions, which is the
explanation the technician gets. The combined index (T²/T²_lim + Q/Q_lim) is scaled by a threshold
learned on healthy simulated units after simulated on-site calibration, so a score of 1.0 is the
warning threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VARIANCE_KEPT = 0.90  # principal components kept: enough for the physical drivers, not the noise
SCALE_FLOOR = 1e-3  # relative floor of a feature's scale, so a near-constant feature cannot explode


@dataclass(frozen=True)
class Detector:
    """Fitted weights. ``components`` is F×k, ``eigenvalues`` k (in fleet-scaled units)."""

    fleet_scale: np.ndarray
    components: np.ndarray
    eigenvalues: np.ndarray
    t2_limit: float
    q_limit: float
    score_limit: float  # combined index that maps to score 1.0

    @property
    def t2_weight(self) -> np.ndarray:
        return 1.0 / (self.eigenvalues * self.t2_limit * self.score_limit)

    @property
    def q_weight(self) -> float:
        return 1.0 / (self.q_limit * self.score_limit)

    def contributions(self, z: np.ndarray) -> np.ndarray:
        """Per-feature contributions (rows of z = standardised features); they sum to the score.

        Q part: the squared residual of each feature. T² part: z_i · (P Λ⁻¹ Pᵀ z)_i, the standard
        decomposition (a feature can contribute negatively when it pulls against the others).
        """
        p = self.components
        t = z @ p
        resid = z - t @ p.T
        return resid * resid * self.q_weight + z * ((t * self.t2_weight) @ p.T)

    def score(self, z: np.ndarray) -> np.ndarray:
        return self.contributions(z).sum(axis=-1)


def robust_scale(z: np.ndarray) -> np.ndarray:
    """1.4826 · MAD per column, floored (a centred matrix in, NaN ignored)."""
    mad = np.nanmedian(np.abs(z), axis=0) * 1.4826
    std = np.nanstd(z, axis=0)
    # MAD is zero for features that are mostly constant (e.g. starts in short windows); fall back to std.
    scale = np.where(mad > 0, mad, std)
    return np.maximum(scale, SCALE_FLOOR * np.maximum(np.nanmax(np.abs(z), axis=0), 1.0))


def fit_subspace(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal directions and variances of standardised rows (NaN counted as 0 = normal)."""
    z = np.nan_to_num(z, nan=0.0)
    cov = z.T @ z / len(z)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    kept = int(np.searchsorted(np.cumsum(values) / values.sum(), VARIANCE_KEPT) + 1)
    kept = min(kept, len(values) - 1)
    vectors = vectors[:, :kept]
    # An eigenvector's sign is arbitrary; pin it so that training twice gives the same bytes.
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(kept)])
    return vectors * signs, np.maximum(values[:kept], 1e-6)


def t2_q(z: np.ndarray, components: np.ndarray, eigenvalues: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = z @ components
    resid = z - t @ components.T
    return (t * t / eigenvalues).sum(axis=1), (resid * resid).sum(axis=1)
