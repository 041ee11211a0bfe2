"""deploy/: the Redis config runs as written and confines the collector's user to its own keys."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis
from redis.exceptions import NoPermissionError

from signalcraft import embedded

DEPLOY = Path(__file__).parent.parent / "deploy"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_redis_config_confines_the_collector(tmp_path: Path) -> None:
    port = embedded.free_port()
    conf = (DEPLOY / "redis" / "signalcraft.conf").read_text()
    conf = conf.replace("REPLACE_WITH_SHA256_OF_THE_PASSWORD", hashlib.sha256(b"pw").hexdigest())
    conf = conf.replace("port 6379", f"port {port}") + f"\ndir {tmp_path}\n"
    (tmp_path / "redis.conf").write_text(conf)
    proc = subprocess.Popen(
        ["redis-server", str(tmp_path / "redis.conf")], stdout=subprocess.DEVNULL, start_new_session=True
    )
    try:
        embedded.wait_for_port("127.0.0.1", port, proc=proc)
        client = redis.Redis(port=port, username="signalcraft", password="pw")
        for _ in range(50):  # the AOF may still be loading
            try:
                client.ping()
                break
            except redis.BusyLoadingError:
                time.sleep(0.1)
        client.set("signalcraft:session:x", "1", ex=60)
        assert client.get("signalcraft:session:x") == b"1"
        client.xadd("signalcraft:events", {"type": "t"}, maxlen=10)
        with pytest.raises(NoPermissionError):
            client.set("other:key", "1")
        with pytest.raises(NoPermissionError):
            client.flushall()
        with pytest.raises(NoPermissionError):
            client.config_get("maxmemory")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()  # the default user is off
        client.close()
    finally:
        embedded.terminate(proc)
