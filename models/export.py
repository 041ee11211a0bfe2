"""Export a fitted :class:`~models.detector.Detector` to ONNX plus its JSON manifest.

The graph takes the raw feature vector and this site's normal as *inputs*, so one shipped file serves
every unit and on-site calibration changes no bytes (the sha256 in the manifest stays valid):

    features [1,F], center [F], inv_scale [F]
      x  = where(isnan(features), center, features)     # a feature absent from this window is normal
      z  = (x - center) * inv_scale
      t  = z · P                                         # P: F×k principal directions
      contributions = (z - t·Pᵀ)² · wQ  +  z ⊙ ((t ⊙ wT) · Pᵀ)
      score = Σ contributions                            # 1.0 = warning threshold

Bytes are deterministic: fixed node names, no timestamps, float32 weights from a deterministic fit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edge_agent.analytics.features import FEATURES, Timing
from models.detector import Detector
from models.onnx_graph import manifest_head, scorer, write_model

MODEL_NAME = "compressor"


@dataclass(frozen=True)
class ExportInfo:
    version: str
    window_seconds: float  # machine time the model's windows are meant to cover
    timing: Timing  # durations of the operating modes inside them
    training: dict[str, Any] = field(default_factory=dict)


def build_graph(det: Detector) -> onnx.ModelProto:
    f, k = det.components.shape
    p = det.components.astype(np.float32)
    inits = [
        numpy_helper.from_array(p, "P"),
        numpy_helper.from_array(np.ascontiguousarray(p.T), "Pt"),
        numpy_helper.from_array(det.t2_weight.astype(np.float32), "w_t2"),
        numpy_helper.from_array(np.array(det.q_weight, dtype=np.float32), "w_q"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("IsNaN", ["features"], ["nan_mask"], name="nan_mask"),
        helper.make_node("Where", ["nan_mask", "center", "features"], ["x"], name="impute"),
        helper.make_node("Sub", ["x", "center"], ["dx"], name="center_sub"),
        helper.make_node("Mul", ["dx", "inv_scale"], ["z"], name="scale_mul"),
        helper.make_node("MatMul", ["z", "P"], ["t"], name="project"),
        helper.make_node("MatMul", ["t", "Pt"], ["recon"], name="reconstruct"),
        helper.make_node("Sub", ["z", "recon"], ["resid"], name="residual"),
        helper.make_node("Mul", ["resid", "resid"], ["resid_sq"], name="residual_sq"),
        helper.make_node("Mul", ["resid_sq", "w_q"], ["q_part"], name="q_weight"),
        helper.make_node("Mul", ["t", "w_t2"], ["t_w"], name="t2_weight"),
        helper.make_node("MatMul", ["t_w", "Pt"], ["t_back"], name="t2_back"),
        helper.make_node("Mul", ["z", "t_back"], ["t2_part"], name="t2_part"),
        helper.make_node("Add", ["q_part", "t2_part"], ["contributions"], name="contributions"),
        helper.make_node("ReduceSum", ["contributions", "axis1"], ["score"], keepdims=0, name="score"),
    ]
    return scorer(
        nodes,
        f,
        inits,
        "compressor_pca_t2q",
        f"PCA T2+Q detector over {f} window features, {k} components; score 1.0 = threshold",
    )


def export(det: Detector, info: ExportInfo, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<version>.onnx`` and ``<version>.json`` into ``out_dir``; return both paths."""
    onnx_path, blob = write_model(build_graph(det), out_dir, info.version)
    manifest = {
        **manifest_head(MODEL_NAME, info.version, onnx_path, blob, list(FEATURES)),
        "normalisation": {
            "fleet_scale": _floats(det.fleet_scale),
            "site": "center = median of the calibration windows; scale = max(fleet_scale, 1.4826 * site MAD)",
        },
        "detector": {
            "method": "PCA T2 + Q (SPE), combined index",
            "components": int(det.components.shape[1]),
            "eigenvalues": _floats(det.eigenvalues),
            "t2_limit": _round(det.t2_limit),
            "q_limit": _round(det.q_limit),
            "score_limit": _round(det.score_limit),
            "thresholds": {"warning": 1.0, "alarm": 2.0, "clear": 0.7},
        },
        "window": {"seconds": info.window_seconds, "timing": asdict(info.timing)},
        "training": info.training,
    }
    manifest_path = out_dir / f"{info.version}.json"
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return onnx_path, manifest_path


def _round(x: float) -> float:
    return float(f"{x:.9g}")


def _floats(a: np.ndarray) -> list[float]:
    return [_round(float(v)) for v in a]
