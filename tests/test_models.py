"""Training, export and the model CLI: reproducible bytes, a graph that computes what the numpy fit says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edge_agent.analytics.features import FEATURES, Timing
from edge_agent.analytics.runner import ModelRunner
from models.cli import app
from models.dataset import simulate_fleet
from models.detector import Detector
from models.export import ExportInfo, export
from models.train import TrainConfig, fit, train

SMALL = TrainConfig(seeds=2, days=0.5)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    train(SMALL, out)
    return out


def test_training_is_reproducible(small_model: Path, tmp_path: Path) -> None:
    train(SMALL, tmp_path)
    for name in ("compressor-v1.onnx", "compressor-v1.json"):
        assert (tmp_path / name).read_bytes() == (small_model / name).read_bytes(), name


def test_manifest_describes_the_model(small_model: Path) -> None:
    doc = json.loads((small_model / "compressor-v1.json").read_text())
    model = onnx.load(str(small_model / doc["onnx_file"]))
    assert doc["features"] == list(FEATURES)
    assert [i.name for i in model.graph.input] == [
        doc["inputs"][k] for k in ("features", "center", "inv_scale")
    ]
    assert [o.name for o in model.graph.output] == [doc["outputs"][k] for k in ("score", "contributions")]
    assert doc["opset"] == model.opset_import[0].version
    assert doc["training"]["seeds"] == SMALL.seed_list and doc["training"]["kinds"] == [
        "freezer",
        "cold_room",
    ]
    assert len(doc["normalisation"]["fleet_scale"]) == len(FEATURES)


def test_onnx_graph_matches_numpy_detector(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = len(FEATURES)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    det = Detector(
        fleet_scale=rng.uniform(0.5, 2.0, n),
        components=q[:, :4],
        eigenvalues=np.array([5.0, 3.0, 2.0, 1.0]),
        t2_limit=9.0,
        q_limit=4.0,
        score_limit=2.0,
    )
    export(det, ExportInfo("compressor-v1", 1200.0, Timing()), tmp_path)
    runner = ModelRunner(tmp_path)
    center = rng.normal(size=n).astype(np.float32)
    inv_scale = (1 / det.fleet_scale).astype(np.float32)
    runner.set_normal(center, inv_scale)
    for _ in range(5):
        x = rng.normal(size=n) * 3
        score, contributions = runner.run(x)
        z = ((x.astype(np.float32) - center) * inv_scale)[None]
        expected = det.contributions(z)[0]
        assert np.allclose(contributions, expected, rtol=1e-4, atol=1e-5)
        assert score == pytest.approx(expected.sum(), rel=1e-4)


def test_healthy_training_windows_score_below_threshold() -> None:
    units = simulate_fleet(("freezer",), [1000, 1001], 0.5, SMALL.regime)
    det, stats = fit(units, SMALL)
    assert stats["healthy_score_p99"] < 0.6  # the threshold sits well above healthy windows
    assert det.components.shape[0] == len(FEATURES)


def test_cli_train_writes_artifacts(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path), "--days", "0.5", "--seeds", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "compressor-v1.onnx").exists() and (tmp_path / "compressor-v1.json").exists()
    assert ModelRunner(tmp_path).version == "compressor-v1"
