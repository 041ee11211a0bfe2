"""The waveform model (``waveform-v1``): the largest standardised deviation of the waveform features.

Same detector as :mod:`models.pump` (max |z| over a limit), over the features of
:mod:`edge_agent.analytics.waveform`. Nothing is fitted offline: the bands and the limit are declared, and
the agent's on-site calibration learns each sensor's normal (its first windows, or a baseline recording
for ``signalcraft-agent analyze --baseline``).

    python -m models.waveform      # rewrite models/variants/waveform-v1 (deterministic bytes)
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_agent.analytics.waveform import WaveformSpec
from models.onnx_graph import manifest_head, write_model
from models.pump import build_graph

VERSION = "waveform-v1"
Z_LIMIT = 5.0
ARTIFACTS = Path(__file__).with_name("variants") / VERSION
# Log10 band energies move by a few hundredths with load and temperature; a tenth (about 2 dB) is the
# smallest change worth a look. No floor for the others: the site's own spread decides.
LOG_FLOOR = 0.1


def export(spec: WaveformSpec | None = None, out_dir: Path = ARTIFACTS, z_limit: float = Z_LIMIT) -> Path:
    spec = spec or WaveformSpec()
    names = spec.names
    onnx_path, blob = write_model(build_graph(len(names), z_limit), out_dir, VERSION)
    floor = [LOG_FLOOR if n.startswith("band.") or n == "envelope_peak" else 0.0 for n in names]
    manifest = {
        **manifest_head("waveform", VERSION, onnx_path, blob, list(names)),
        "extractor": spec.to_manifest(),
        "normalisation": {
            "fleet_scale": floor,
            "site": "center = median of the calibration windows; scale = max(floor, 1.4826 * MAD, std)",
        },
        "detector": {
            "method": "largest standardised deviation (max |z|)",
            "z_limit": z_limit,
            "thresholds": {"warning": 1.0, "alarm": 2.0, "clear": 0.7},
        },
        "window": {"seconds": 1.0},
        "training": {"source": "none: every number is declared here; calibration learns the sensor"},
    }
    path = out_dir / f"{VERSION}.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(export())
