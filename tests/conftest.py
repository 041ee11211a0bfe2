from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalcraft import embedded
from tests import services


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SIGNALCRAFT_* setting of the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("SIGNALCRAFT_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[embedded.Broker]:
    """A mosquitto (or amqtt) broker of our own, configured from deploy/mosquitto/."""
    b = embedded.start_broker(tmp_path_factory.mktemp("broker"))
    yield b
    b.stop()


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, server = services.admin_pg_url(tmp_path_factory.mktemp("pg"))
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    url, name = services.create_database(pg_admin_url)
    yield url
    services.drop_database(pg_admin_url, name)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, proc, why = services.redis_url(tmp_path_factory.mktemp("redis"))
    if url is None:
        pytest.skip(why)
    yield url
    if proc is not None:
        embedded.terminate(proc)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d
