"""sd_notify without a dependency, for both tiers: ``READY=1``, ``STATUS=…``, ``WATCHDOG=1``, ``STOPPING=1``.

A no-op outside a ``Type=notify`` unit (no ``$NOTIFY_SOCKET``), so programs call it unconditionally.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the collector waits on an asyncio.Event; the agent need not load asyncio
    import asyncio


def notify(message: str) -> bool:
    """Send one notification to systemd; False when not running under a notify-type unit."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(address)
        s.sendall(message.encode())
    return True


def watchdog_interval() -> float | None:
    """Half the unit's WatchdogSec, in seconds, or None when no watchdog is configured."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or (os.environ.get("WATCHDOG_PID") and os.environ["WATCHDOG_PID"] != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def ready_when(ready: asyncio.Event) -> None:
    """``READY=1`` once ``ready`` is set (an asyncio service that signals its own startup)."""
    await ready.wait()
    notify("READY=1")
