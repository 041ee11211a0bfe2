"""A generic per-channel model (``pump-v1``) for machines the compressor model does not describe.

The first user is the SKAB water-pump testbed (``signalcraft-model benchmark skab``), but nothing here
knows about SKAB's files: the model is a list of channels with their physical ranges and allowances
(:mod:`edge_agent.analytics.channels`), a window, and one limit. Everything site-specific is learned by
the agent's on-site calibration, exactly as for the compressor.

Detector: the largest standardised deviation of any feature from this site's normal,

    z = (x - center) * inv_scale;   contributions = |z| / Z_LIMIT;   score = max(contributions)

Why the maximum and not T² + Q: without a fleet of healthy machines of this kind there is no honest
correlation structure to learn, and a fault of a generic machine usually shows in one or two channels
(the flow falls, the vibration rises) which a sum over sixteen features would dilute in the noise of the
other fourteen. The limit is in units of the site's own spread: ``Z_LIMIT`` = 4 means "four times the
spread seen during calibration" (a fixed statistical choice, not fitted to any labels).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edge_agent.analytics.channels import Channel, ChannelSpec
from models.onnx_graph import manifest_head, scorer, write_model

VERSION = "pump-v1"
Z_LIMIT = 5.0
WINDOW = 10  # readings (10 s at 1 Hz): short enough to follow a valve that closes in seconds
FLAT_READINGS = 300  # quantised meters (whole litres per minute) repeat for tens of seconds when steady
ARTIFACTS = Path(__file__).with_name("variants") / VERSION

#: SKAB's channels. Allowances: motor body and fluid temperatures follow the room and the load by a
#: kelvin or so over an hour without any fault (1 K); the others have none (their spread is enough).
SKAB_CHANNELS: tuple[Channel, ...] = (
    Channel("Accelerometer1RMS", 0.0, 50.0),
    Channel("Accelerometer2RMS", 0.0, 50.0),
    Channel("Current", 0.0, 100.0),
    Channel("Pressure", -5.0, 50.0),
    Channel("Temperature", -40.0, 150.0, allowance=1.0),
    Channel("Thermocouple", -40.0, 150.0, allowance=1.0),
    Channel("Voltage", 0.0, 500.0),
    Channel("Volume Flow RateRMS", 0.0, 1000.0),
)


@dataclass(frozen=True)
class PumpConfig:
    channels: tuple[Channel, ...] = SKAB_CHANNELS
    window: int = WINDOW
    z_limit: float = Z_LIMIT
    flat_readings: int = FLAT_READINGS
    seconds_per_reading: float = 1.0
    version: str = VERSION

    @property
    def spec(self) -> ChannelSpec:
        return ChannelSpec(self.channels, self.window, self.flat_readings)


def build_graph(n_features: int, z_limit: float) -> onnx.ModelProto:
    f = n_features
    inits = [
        numpy_helper.from_array(np.array(1.0 / z_limit, dtype=np.float32), "inv_limit"),
    ]
    nodes = [
        helper.make_node("IsNaN", ["features"], ["nan_mask"], name="nan_mask"),
        helper.make_node("Where", ["nan_mask", "center", "features"], ["x"], name="impute"),
        helper.make_node("Sub", ["x", "center"], ["dx"], name="center_sub"),
        helper.make_node("Mul", ["dx", "inv_scale"], ["z"], name="scale_mul"),
        helper.make_node("Abs", ["z"], ["abs_z"], name="abs"),
        helper.make_node("Mul", ["abs_z", "inv_limit"], ["contributions"], name="contributions"),
        helper.make_node("ReduceMax", ["contributions"], ["score"], axes=[1], keepdims=0, name="score"),
    ]
    return scorer(
        nodes,
        f,
        inits,
        "channels_max_z",
        f"largest |z| of {f} channel features over {z_limit:g}; score 1.0 = threshold",
    )


def export(cfg: PumpConfig, out_dir: Path = ARTIFACTS) -> tuple[Path, Path]:
    """Write ``<version>.onnx`` and its manifest (deterministic bytes); return both paths."""
    spec = cfg.spec
    names = spec.names
    onnx_path, blob = write_model(build_graph(len(names), cfg.z_limit), out_dir, cfg.version)
    manifest = {
        **manifest_head("channels", cfg.version, onnx_path, blob, list(names)),
        "extractor": spec.to_manifest(),
        "normalisation": {
            "fleet_scale": [float(v) for v in spec.floor()],
            "site": "center = median of the calibration windows; "
            "scale = max(allowance, 1.4826 * site MAD, site std)",
        },
        "detector": {
            "method": "largest standardised deviation (max |z|)",
            "z_limit": cfg.z_limit,
            "thresholds": {"warning": 1.0, "alarm": 2.0, "clear": 0.7},
        },
        "window": {"seconds": cfg.window * cfg.seconds_per_reading},
        "training": {"source": "none: every number is declared here; calibration learns the site"},
    }
    manifest_path = out_dir / f"{cfg.version}.json"
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return onnx_path, manifest_path
