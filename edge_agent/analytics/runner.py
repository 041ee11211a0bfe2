"""The ONNX runner: verify the model against its manifest, then score feature vectors with onnxruntime.

The manifest (``<name>.json`` next to ``<name>.onnx``) pins the model version, the feature names in
order, the graph's input and output names, the fleet normalisation and the sha256 of the ``.onnx``
bytes. The runner hashes the bytes it is about to load and hands *those bytes* to onnxruntime, so what
was verified is what runs. Any mismatch is a :class:`~common.errors.ModelError` naming the file.

One thread, sequential execution: on a four-core Pi the agent shares the CPU with the poller, the
buffer and the uplink, and the graph is a few small matrix products, so thread pools only add latency
and memory. Input arrays are allocated once and refilled in place.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from common.errors import ModelError
from edge_agent.analytics.channels import ChannelSpec
from edge_agent.analytics.features import FEATURES, Timing
from edge_agent.analytics.waveform import WaveformSpec

MANIFEST_FORMAT = 1
_ORT_ERRORS = (
    ort_state.Fail,
    ort_state.InvalidArgument,
    ort_state.InvalidGraph,
    ort_state.InvalidProtobuf,
    ort_state.NoSuchFile,
    ort_state.RuntimeException,
)


def bundled_model_dir() -> Path:
    """Folder of the model shipped with the package (``models/artifacts``)."""
    # find_spec rather than importing: it also works when the package is seen as a namespace package
    # (an editable install made before models/__init__.py existed), and it runs no package code.
    spec = importlib.util.find_spec("models")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "artifacts").is_dir():
            return Path(location) / "artifacts"
    raise ModelError("no bundled model: the models/artifacts folder is not installed")


@dataclass(frozen=True)
class Manifest:
    """The parts of the manifest the agent relies on (the file holds more, for people)."""

    version: str
    onnx_file: str
    sha256: str
    features: tuple[str, ...]
    inputs: tuple[str, str, str]  # features, center, inv_scale
    outputs: tuple[str, str]  # score, contributions
    fleet_scale: np.ndarray
    window_seconds: float  # machine time one window is meant to cover
    timing: Timing  # durations of the operating modes, in machine seconds
    channels: ChannelSpec | None  # a generic per-channel model (None: the compressor's features)
    waveform: WaveformSpec | None  # a waveform model
    raw: dict[str, Any]

    @property
    def expected_features(self) -> tuple[str, ...]:
        """The feature names this agent computes for the model's extractor, in order."""
        if self.channels is not None:
            return self.channels.names
        if self.waveform is not None:
            return self.waveform.names
        return FEATURES

    @classmethod
    def load(cls, model_dir: Path) -> Manifest:
        candidates = sorted(model_dir.glob("*.json"))
        if len(candidates) != 1:
            raise ModelError(
                f"expected exactly one manifest (*.json) in {model_dir}, found {len(candidates)}"
            )
        path = candidates[0]
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc["format"] != MANIFEST_FORMAT:
                raise ModelError(
                    f"{path}: manifest format {doc['format']!r}, this agent reads {MANIFEST_FORMAT}"
                )
            return cls(
                version=str(doc["version"]),
                onnx_file=str(doc["onnx_file"]),
                sha256=str(doc["sha256"]),
                features=tuple(doc["features"]),
                inputs=tuple(doc["inputs"][k] for k in ("features", "center", "inv_scale")),  # type: ignore[arg-type]
                outputs=tuple(doc["outputs"][k] for k in ("score", "contributions")),  # type: ignore[arg-type]
                fleet_scale=np.array(doc["normalisation"]["fleet_scale"], dtype=float),
                window_seconds=float(doc["window"]["seconds"]),
                timing=Timing(**{k: float(v) for k, v in doc["window"].get("timing", {}).items()}),
                channels=_extractor(doc.get("extractor", {"kind": "compressor"})),
                waveform=_waveform(doc.get("extractor", {})),
                raw=doc,
            )
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"cannot read model manifest {path}: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model manifest {path} is incomplete or malformed: {exc!r}") from exc


def _extractor(doc: dict[str, Any]) -> ChannelSpec | None:
    kind = doc.get("kind")
    if kind == "compressor":
        return None
    if kind == "channels":
        return ChannelSpec.from_manifest(doc)
    if kind == "waveform":
        return None
    raise ValueError(f"unknown extractor kind {kind!r} (compressor or channels)")


def _waveform(doc: dict[str, Any]) -> WaveformSpec | None:
    return WaveformSpec.from_manifest(doc) if doc.get("kind") == "waveform" else None


def bundled_waveform_dir() -> Path:
    """Folder of the waveform model shipped with the package (``models/variants/waveform-v1``)."""
    path = bundled_model_dir().parent / "variants" / "waveform-v1"
    if not path.is_dir():
        raise ModelError(f"no bundled waveform model: {path} is not installed")
    return path


class ModelRunner:
    """A verified ONNX model with preallocated inputs: ``run(features) -> (score, contributions)``."""

    def __init__(self, model_dir: Path | None = None) -> None:
        model_dir = model_dir or bundled_model_dir()
        self.manifest = m = Manifest.load(model_dir)
        if m.features != m.expected_features:
            raise ModelError(
                f"model {m.version} expects features {list(m.features)}, "
                f"this agent computes {list(m.expected_features)}"
            )
        onnx_path = model_dir / m.onnx_file
        try:
            blob = onnx_path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read model file {onnx_path}: {exc}") from exc
        digest = hashlib.sha256(blob).hexdigest()
        if digest != m.sha256:
            raise ModelError(
                f"model file {onnx_path} does not match its manifest: sha256 {digest}, expected {m.sha256}"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # The graph's tensors are a few hundred bytes: an arena and memory patterns would only reserve
        # resident memory the agent never uses (measured in docs/PERFORMANCE.md).
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        try:
            self.session = ort.InferenceSession(
                blob, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except _ORT_ERRORS as exc:
            raise ModelError(f"onnxruntime cannot load {onnx_path}: {exc}") from exc
        names = {i.name for i in self.session.get_inputs()}
        if names != set(m.inputs):
            raise ModelError(f"model {onnx_path} has inputs {sorted(names)}, manifest says {list(m.inputs)}")
        n = len(m.features)
        self._x = np.zeros((1, n), dtype=np.float32)
        self._center = np.zeros(n, dtype=np.float32)
        self._inv_scale = np.zeros(n, dtype=np.float32)
        self._feeds = {m.inputs[0]: self._x, m.inputs[1]: self._center, m.inputs[2]: self._inv_scale}
        self._outputs = list(m.outputs)
        self._score = np.zeros(1, dtype=np.float32)
        self._contrib = np.zeros((1, n), dtype=np.float32)
        self._bound = self._bind()

    def _bind(self) -> Any:
        """Bind the preallocated input and output arrays to the session once (zero-copy), so a run
        is one call into onnxruntime: half the cost of ``session.run`` for a graph this small, where
        the Python wrapper's per-call checks dominate. Falls back to ``session.run`` when this
        onnxruntime build does not expose the binding the way we expect."""
        try:
            binding = self.session.io_binding()
            for name, arr in zip(self.manifest.inputs, (self._x, self._center, self._inv_scale), strict=True):
                binding.bind_input(name, "cpu", 0, np.float32, list(arr.shape), arr.ctypes.data)
            for name, arr in zip(self._outputs, (self._score, self._contrib), strict=True):
                binding.bind_output(name, "cpu", 0, np.float32, list(arr.shape), arr.ctypes.data)
            run = self.session._sess.run_with_iobinding  # the pybind session under the wrapper
            raw, options = binding._iobinding, ort.RunOptions()
            run(raw, options)
        except (AttributeError, *_ORT_ERRORS):
            return None
        return lambda: run(raw, options)

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def n_features(self) -> int:
        return len(self.manifest.features)

    def set_normal(self, center: np.ndarray, inv_scale: np.ndarray) -> None:
        """Install this site's normal (see :mod:`edge_agent.analytics.calibration`)."""
        self._center[:] = center
        self._inv_scale[:] = inv_scale

    @property
    def normal(self) -> tuple[np.ndarray, np.ndarray]:
        """This site's (center, inv_scale) as installed."""
        return self._center, self._inv_scale

    def zscores(self, features: np.ndarray) -> np.ndarray:
        """Standardised deviation of each feature from this site's normal (0 where unobserved)."""
        z = (features - self._center) * self._inv_scale
        return np.nan_to_num(z, nan=0.0)

    def run(self, features: np.ndarray) -> tuple[float, np.ndarray]:
        """Score one feature vector (NaN = not observed in this window: counts as normal)."""
        self._x[0] = features
        if self._bound is not None:
            self._bound()
            return float(self._score[0]), self._contrib[0]
        score, contributions = self.session.run(self._outputs, self._feeds)
        return float(score.reshape(-1)[0]), contributions.reshape(-1)
