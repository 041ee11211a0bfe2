"""The collector's HTTP API (aiohttp): REST, server-sent events, OpenAPI, metrics and the dashboard."""

from cloud_collector.api.app import make_app

__all__ = ["make_app"]
