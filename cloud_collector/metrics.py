"""Prometheus counters of the collector, rendered in the text exposition format (no client library needed)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

_HELP = {
    "messages_received_total": ("counter", "MQTT messages taken from the queue, by kind"),
    "messages_stored_total": ("counter", "valid messages committed (new or duplicate), by kind"),
    "readings_stored_total": ("counter", "readings inserted"),
    "duplicates_total": ("counter", "readings and states discarded as redeliveries"),
    "dead_letters_total": ("counter", "messages refused into dead_letters"),
    "alerts_changed_total": ("counter", "alert lifecycle events, by event"),
    "batches_total": ("counter", "database transactions of the writer"),
    "batch_retries_total": ("counter", "batches retried because the database was unavailable"),
    "queue_depth": ("gauge", "messages waiting between the MQTT thread and the writer"),
    "mqtt_connected": ("gauge", "1 when subscribed to the broker"),
}


@dataclass
class Metrics:
    received: Counter[str] = field(default_factory=Counter)
    stored: Counter[str] = field(default_factory=Counter)
    readings_stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    batch_retries: int = 0

    def render(self, queue_depth: int, mqtt_connected: bool) -> str:
        samples: dict[str, list[tuple[str, float]]] = {
            "messages_received_total": [(f'{{kind="{k}"}}', v) for k, v in sorted(self.received.items())],
            "messages_stored_total": [(f'{{kind="{k}"}}', v) for k, v in sorted(self.stored.items())],
            "readings_stored_total": [("", self.readings_stored)],
            "duplicates_total": [("", self.duplicates)],
            "dead_letters_total": [("", self.dead_letters)],
            "alerts_changed_total": [(f'{{event="{k}"}}', v) for k, v in sorted(self.alerts.items())],
            "batches_total": [("", self.batches)],
            "batch_retries_total": [("", self.batch_retries)],
            "queue_depth": [("", queue_depth)],
            "mqtt_connected": [("", 1 if mqtt_connected else 0)],
        }
        lines = []
        for name, (kind, text) in _HELP.items():
            full = f"signalcraft_collector_{name}"
            lines += [f"# HELP {full} {text}", f"# TYPE {full} {kind}"]
            lines += [f"{full}{labels} {value}" for labels, value in samples[name]]
        return "\n".join(lines) + "\n"

