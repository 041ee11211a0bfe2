"""`signalcraft demo --duration 90`, exactly as the README tells a newcomer to run it (DESIGN.md contract)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_demo_runs_and_summarises(tmp_path: Path) -> None:
    signalcraft = Path(sys.executable).with_name("signalcraft")
    done = subprocess.run(
        [str(signalcraft), "demo", "--duration", "90", "--port", "0", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "COLUMNS": "200", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    summary = out[out.rindex("Summary") :]
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in summary.splitlines()
        if line.startswith("│ compressor-")
    }
    assert len(rows) == 6
    for device, (fault, readings, _gaps, alerts) in rows.items():
        assert int(readings) > 0, device
        assert (alerts == "none") == (fault == "none"), f"{device}: fault {fault}, alerts {alerts}"
    assert "alerts by type: health: 3" in summary
