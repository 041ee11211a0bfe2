"""SignalCraft cloud collector: MQTT ingest into PostgreSQL, alert rules, HTTP API and dashboard.

See ``docs/collector.md``. The public surface is what a program embedding the collector needs.
"""

from cloud_collector.config import CollectorSettings, load_settings
from cloud_collector.service import Collector, run_collector

__all__ = ["Collector", "CollectorSettings", "load_settings", "run_collector"]
