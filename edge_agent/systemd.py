"""The agent under systemd: READY, and the watchdog that is fed only while the agent makes progress.

READY=1 goes out after the first good poll cycle. WATCHDOG=1 goes out every half ``WatchdogSec`` but
only while *every* progress probe is fresh: the poll loop completed a cycle recently, and the uplink's
sender thread went round its loop recently while paho's network thread (which connects and reconnects)
is alive. A broker outage is not a stall (both uplink threads keep going, retrying), so it never makes
systemd restart the agent; a hung poll loop or a dead or hung sender does, which is the only cure for
them. When feeding stops, the reason goes to the journal and to ``systemctl status`` (STATUS=).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.sdnotify import notify, watchdog_interval

log = logging.getLogger(__name__)
__all__ = ["Probe", "notify", "stalled", "supervise", "watchdog_interval"]


@dataclass(frozen=True)
class Probe:
    """One part of the agent that must keep moving: ``last`` returns the monotonic time it last showed
    progress (0.0 = dead), ``limit`` is how old that may get before we call it stalled."""

    name: str
    last: Callable[[], float]
    limit: float


def stalled(probes: list[Probe], now: float) -> list[str]:
    """What stalled, in words for the journal; empty when the watchdog may be fed."""
    out = []
    for p in probes:
        last = p.last()
        if last <= 0.0:
            out.append(f"{p.name}: not running")
        elif now - last > p.limit:
            out.append(f"{p.name}: no progress for {now - last:.0f} s (limit {p.limit:.0f} s)")
    return out


def supervise(ready: threading.Event, stop: threading.Event, probes: list[Probe]) -> None:
    """READY=1 once ``ready`` is set; then feed the watchdog while no probe has stalled, until ``stop``."""
    while not ready.wait(0.5):
        if stop.is_set():
            return
    notify("READY=1")
    notify("STATUS=polling")
    interval = watchdog_interval()
    if interval is None:
        return
    was_stalled = False
    while not stop.wait(interval):
        problems = stalled(probes, time.monotonic())
        if not problems:
            notify("WATCHDOG=1")
            if was_stalled:
                log.info("progress again: feeding the watchdog")
                notify("STATUS=polling")
            was_stalled = False
            continue
        if not was_stalled:
            text = "; ".join(problems)
            log.error("watchdog not fed; systemd will restart the agent", extra={"stalled": text})
            notify(f"STATUS=stalled: {text}")
        was_stalled = True
