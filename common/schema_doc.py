"""Renders ``docs/wire-protocol.md`` from :mod:`common.schema`.

    python -m common.schema_doc > docs/wire-protocol.md

A test fails when the committed page differs from what this prints, so the page cannot drift.
"""

from __future__ import annotations

import json

from common.schema import json_schemas

HEADER = """\
# Wire protocol (v1)

Topics: `signalcraft/v1/{site}/{device}/{kind}` with kind `telemetry`, `state`, `status` (retained birth
and Last Will), `cmd` (down) and `cmd/ack` (up). Payloads are JSON objects with a `kind` tag equal to the
topic's kind, the schema version `v` (1), the `site` and `device` (which must match the topic), and the
`boot` id (32 hex digits, new at every agent start). Readings and state changes carry a per-boot
sequence number `seq`; (device, boot, seq) is the idempotency key. Timestamps are device UTC in RFC 3339
with an offset; a reading whose device clock is not trustworthy says so in `clock` (`unsynced`, or
`jump:+3600s`). Values must be finite numbers.

A message that fails validation is rejected with a precise reason, for example
``Expected `int`, got `str` - at `$.readings[0].seq` `` or `unsupported schema version 2`.

Commands (`cmd`) are answered on `cmd/ack` with the same `id`; the agent knows `ping`, `status` and
`recalibrate`.

The schemas below are generated from `common/schema.py` by `python -m common.schema_doc`.
"""


def render() -> str:
    parts = [HEADER]
    for kind, schema in json_schemas().items():
        parts += [f"## `{kind}`", "", "```json", json.dumps(schema, indent=2), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
