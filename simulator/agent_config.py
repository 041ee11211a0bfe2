"""The agent configuration that polls one simulated unit (``signalcraft simulate --write-agent-config``).

One agent watches one device, so a fleet gets one file per unit. The text is written out rather than
serialised so that it reads like the sample a person would write by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from simulator.modbus_slave import PROFILE, SimulatedUnit

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # site and device ids, as on the wire


def _q(text: str) -> str:
    # A JSON string is a valid TOML basic string (same quotes, same escapes).
    return json.dumps(text, ensure_ascii=False)


def agent_config_toml(
    unit: SimulatedUnit,
    site: str,
    device: str,
    state_dir: str | Path,
    mqtt_url: str,
    poll_interval: str = "1s",
) -> str:
    """TOML for an agent that reads ``unit`` over its pty and publishes as ``site``/``device``."""
    for label, value in (("site", site), ("device", device)):
        if not _NAME.match(value):
            raise ValueError(f"{label} {value!r} must be 1-64 of A-Z a-z 0-9 _ . - (starting alphanumeric)")
    return (
        "[agent]\n"
        f"site = {_q(site)}\n"
        f"device = {_q(device)}\n"
        f"state_dir = {_q(str(state_dir))}\n"
        f"poll_interval = {_q(poll_interval)}\n"
        "\n"
        "[mqtt]\n"
        f"url = {_q(mqtt_url)}\n"
        "\n"
        "[[modbus]]\n"
        'name = "controller"\n'
        f"port = {_q(unit.port)}\n"
        f"baud = {unit.baud}\n"
        f"slave = {unit.slave_id}\n"
        f"profile = {_q(PROFILE)}\n"
        'timeout = "300ms"\n'
    )


def config_paths(file: Path, count: int) -> list[Path]:
    """``agent.toml`` → ``agent-0.toml``, ``agent-1.toml``, … (one agent per unit)."""
    return [file.with_name(f"{file.stem}-{i}{file.suffix}") for i in range(count)]
