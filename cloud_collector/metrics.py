"""Prometheus counters of the collector, rendered in the text exposition format (no client library needed)."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

_HELP = {
    "messages_received_total": ("counter", "MQTT messages taken from the queue, by kind"),
    "messages_stored_total": ("counter", "valid messages committed (new or duplicate), by kind"),
    "messages_acked_total": ("counter", "messages acknowledged to the broker after their commit"),
    "readings_stored_total": ("counter", "readings inserted"),
    "duplicates_total": ("counter", "readings and states discarded as redeliveries"),
    "dead_letters_total": ("counter", "messages refused into dead_letters"),
    "rate_limited_total": ("counter", "messages refused because their device exceeded its rate limit"),
    "alerts_changed_total": ("counter", "alert lifecycle events, by event"),
    "batches_total": ("counter", "database transactions of the writer"),
    "batch_retries_total": ("counter", "batches retried because the database was unavailable"),
    "cache_errors_total": ("counter", "Redis writes of the latest device state that failed (ingest went on)"),
    "readings_missing": ("gauge", "readings that never arrived: sequence gaps over the fleet, per boot"),
    "queue_depth": ("gauge", "messages waiting between the MQTT thread and the writer"),
    "mqtt_connected": ("gauge", "1 when subscribed to the broker"),
}

# Device timestamp of the newest reading in a message -> its commit, in seconds. Fine below 1 s because
# that is where the ingest target sits (p99 <= 200 ms); coarse above, where only "late" matters.
LAG_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0,
               30.0, 60.0, 300.0)


@dataclass
class Histogram:
    """A Prometheus histogram with fixed buckets (cumulative counts are computed when rendered)."""

    bounds: tuple[float, ...] = LAG_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.n += 1

    def quantile(self, q: float) -> float:
        """Estimate like PromQL's ``histogram_quantile``: linear within the bucket that holds rank q."""
        if self.n == 0:
            return float("nan")
        rank, seen, lower = q * self.n, 0, 0.0
        for i, count in enumerate(self.counts):
            upper = self.bounds[i] if i < len(self.bounds) else self.bounds[-1]
            if count and seen + count >= rank:
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
            lower = upper
        return self.bounds[-1]

    def samples(self) -> list[tuple[str, str, float]]:
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(("_bucket", f'{{le="{le}"}}', running))
        out += [("_sum", "", self.total), ("_count", "", self.n)]
        return out


@dataclass
class Metrics:
    received: Counter[str] = field(default_factory=Counter)
    stored: Counter[str] = field(default_factory=Counter)
    acked: int = 0
    readings_stored: int = 0
    readings_missing: int = 0  # refreshed periodically from device_boots
    duplicates: int = 0
    dead_letters: int = 0
    rate_limited: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    batch_retries: int = 0
    cache_errors: int = 0
    commit_lag: Histogram = field(default_factory=Histogram)

    def render(self, queue_depth: int, mqtt_connected: bool) -> str:
        samples: dict[str, list[tuple[str, float]]] = {
            "messages_received_total": [(f'{{kind="{k}"}}', v) for k, v in sorted(self.received.items())],
            "messages_stored_total": [(f'{{kind="{k}"}}', v) for k, v in sorted(self.stored.items())],
            "messages_acked_total": [("", self.acked)],
            "readings_stored_total": [("", self.readings_stored)],
            "duplicates_total": [("", self.duplicates)],
            "dead_letters_total": [("", self.dead_letters)],
            "rate_limited_total": [("", self.rate_limited)],
            "alerts_changed_total": [(f'{{event="{k}"}}', v) for k, v in sorted(self.alerts.items())],
            "batches_total": [("", self.batches)],
            "batch_retries_total": [("", self.batch_retries)],
            "cache_errors_total": [("", self.cache_errors)],
            "readings_missing": [("", self.readings_missing)],
            "queue_depth": [("", queue_depth)],
            "mqtt_connected": [("", 1 if mqtt_connected else 0)],
        }
        lines = []
        for name, (kind, text) in _HELP.items():
            full = f"signalcraft_collector_{name}"
            lines += [f"# HELP {full} {text}", f"# TYPE {full} {kind}"]
            lines += [f"{full}{labels} {value}" for labels, value in samples[name]]
        full = "signalcraft_collector_commit_lag_seconds"
        lines += [f"# HELP {full} device timestamp of a message's newest reading to the commit of its rows",
                  f"# TYPE {full} histogram"]
        lines += [f"{full}{suffix}{labels} {value}" for suffix, labels, value in self.commit_lag.samples()]
        return "\n".join(lines) + "\n"
