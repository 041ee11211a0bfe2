"""What every SignalCraft detector graph shares: its inputs and outputs, its opset, and the manifest head.

Each detector is a graph ``(features[1, F], center[F], inv_scale[F]) → (score[1], contributions[1, F])``:
the site's calibration (center, scale) is an input, so one shipped file serves every unit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper

OPSET = 17
IR_VERSION = 8  # readable by onnxruntime >= 1.14, older than what a Pi image may pin
INPUTS = {"features": "features", "center": "center", "inv_scale": "inv_scale"}
OUTPUTS = {"score": "score", "contributions": "contributions"}


def scorer(
    nodes: list[onnx.NodeProto], n_features: int, initializers: list, name: str, doc: str
) -> onnx.ModelProto:
    """A checked model of the standard signature around ``nodes``."""
    graph = helper.make_graph(
        nodes,
        name,
        inputs=[
            helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, n_features]),
            helper.make_tensor_value_info("center", TensorProto.FLOAT, [n_features]),
            helper.make_tensor_value_info("inv_scale", TensorProto.FLOAT, [n_features]),
        ],
        outputs=[
            helper.make_tensor_value_info("score", TensorProto.FLOAT, [1]),
            helper.make_tensor_value_info("contributions", TensorProto.FLOAT, [1, n_features]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="signalcraft-model",
        producer_version="1",
        ir_version=IR_VERSION,
    )
    model.doc_string = doc
    onnx.checker.check_model(model)
    return model


def write_model(model: onnx.ModelProto, out_dir: Path, version: str) -> tuple[Path, bytes]:
    """``<version>.onnx`` in ``out_dir``, byte for byte the same for the same model."""
    blob = model.SerializeToString(deterministic=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{version}.onnx"
    path.write_bytes(blob)
    return path, blob


def manifest_head(
    kind: str, version: str, onnx_path: Path, blob: bytes, features: list[str]
) -> dict[str, Any]:
    """The manifest fields the agent checks before it trusts a model (see edge_agent/analytics/runner.py)."""
    return {
        "format": 1,
        "model": kind,
        "version": version,
        "onnx_file": onnx_path.name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "opset": OPSET,
        "ir_version": IR_VERSION,
        "features": list(features),
        "inputs": dict(INPUTS),
        "outputs": dict(OUTPUTS),
    }
