"""Docs that are generated must match what generates them; documented settings must exist."""

from __future__ import annotations

from pathlib import Path

import msgspec

from common import schema_doc
from edge_agent.config import AgentSettings

ROOT = Path(__file__).resolve().parent.parent


def test_wire_protocol_page_is_current() -> None:
    assert (ROOT / "docs" / "wire-protocol.md").read_text() == schema_doc.render(), (
        "run: python -m common.schema_doc > docs/wire-protocol.md"
    )


def _leaves(cls: type, prefix: str = "") -> list[str]:
    out = []
    for field in msgspec.structs.fields(cls):
        inner = field.type
        if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
            out += _leaves(inner, f"{prefix}{field.name}.")
        else:
            out.append(f"{prefix}{field.name}")
    return out


def test_every_agent_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    sections = {f.name for f in msgspec.structs.fields(AgentSettings) if "list" in str(f.type)}
    missing = [
        name
        for name in _leaves(AgentSettings)
        if (f"`[[{name}]]`" if name in sections else f"`{name}") not in readme
    ]
    assert not missing, f"settings not documented in README.md: {missing}"
