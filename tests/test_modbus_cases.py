"""Cases as data: ``edge_agent/sources/modbus/testcases/<name>/``.

Each case has an ``agent.toml`` (``@PORT@`` and ``@DIR@`` are filled in) and either ``init.err`` (every
line must appear in the configuration error, raised before any port is opened) or ``registers.json``
(the slaves a pymodbus server serves on a pty) and ``expected.jsonl``: one object per line,
``{"point", "value"}``, ``{"point", "missing": true}`` or ``{"source", "state"[, "info"]}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import ConfigError
from edge_agent import config
from edge_agent.sources.modbus import config as modbus_config
from simulator.rtu_bus import SimBus, load_registers

CASES = Path(__file__).parents[1] / "edge_agent" / "sources" / "modbus" / "testcases"


def _settings(case: Path, tmp_path: Path, port: str) -> config.AgentSettings:
    text = (case / "agent.toml").read_text().replace("@PORT@", port)
    text = text.replace("@DIR@/state", str(tmp_path / "state")).replace("@DIR@", str(case))
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return config.load(path)


@pytest.mark.parametrize("case", sorted(p for p in CASES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_case(case: Path, tmp_path: Path) -> None:
    err = case / "init.err"
    if err.exists():
        with pytest.raises(ConfigError) as info:
            modbus_config.build(_settings(case, tmp_path, str(tmp_path / "never-opened")))
        for line in err.read_text().splitlines():
            assert line in str(info.value)
        return
    with SimBus(load_registers(case / "registers.json")) as line:
        buses = modbus_config.build(_settings(case, tmp_path, line.port))
        try:
            for bus in buses:
                bus.start()
            for bus in buses:
                assert bus.wait_first_round(5.0)
            slaves = {s.name: s for bus in buses for s in bus.slaves}
            values: dict[str, float] = {}
            missing: list[str] = []
            for s in slaves.values():
                result = s.read()
                values.update(result.values)
                missing += result.missing
            for raw in (case / "expected.jsonl").read_text().splitlines():
                want = json.loads(raw)
                if "source" in want:
                    status = slaves[want["source"]].status_dict()
                    assert status["state"] == want["state"], (want, status)
                    if "info" in want:
                        assert status["info"] == want["info"]
                elif want.get("missing"):
                    assert want["point"] in missing, want
                else:
                    assert values[want["point"]] == pytest.approx(want["value"], rel=1e-6), want
        finally:
            for bus in buses:
                bus.stop()
