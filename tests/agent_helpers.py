"""Building agent settings for tests without writing TOML by hand each time."""

from __future__ import annotations

from pathlib import Path

import msgspec

from edge_agent.config import AgentSettings


def agent_settings(state_dir: Path, mqtt_url: str, device: str = "dev-1", **sections) -> AgentSettings:
    raw = {
        "agent": {"site": "test-site", "device": device, "state_dir": str(state_dir), "poll_interval": 1.0},
        "mqtt": {"url": mqtt_url},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
        else:
            raw[key] = value
    return msgspec.convert(raw, AgentSettings, strict=False)
