"""One Modbus slave: its planned reads per poll group, its health, and its latest values.

The slave's :class:`~edge_agent.sources.modbus.bus.Bus` thread calls :meth:`SlaveSource.poll_group`;
the agent's loop calls :meth:`SlaveSource.read`, which never touches the line: it returns the latest
values that are still fresh and lists the rest as missing.

Health (``SlaveStatus.state``), what the cloud needs to tell "no data" from "value unchanged":

- ``online``: the last poll read every point;
- ``error``: the slave answers but some request fails (e.g. an address the device does not have);
- ``stale``: the slave (or its port) did not answer; its values are dropped at once and it is probed
  with exponential back-off (1 s, 2 s, … 30 s), once per probe and without retries, so a dead slave on a
  shared line costs one timeout per back-off period instead of several per cycle.

Retries: a garbled answer (CRC), "busy" and a timeout are retried up to ``retries`` times at once;
"illegal address" is never retried (it will not get better).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from common.errors import CrcError, DeviceBusy, DeviceTimeout, SourceError
from edge_agent.sources.modbus import planner
from edge_agent.sources.modbus.errors import PortError
from edge_agent.sources.modbus.profile import Profile

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0
_RETRYABLE = (DeviceBusy, CrcError, DeviceTimeout)


class Link(Protocol):
    """A transport to one or more slaves: an RTU line or a TCP connection."""

    name: str

    def read(self, slave: int, function: int, address: int, count: int, timeout: float) -> list[int]: ...

    def close(self) -> None: ...


@dataclass
class SlaveStatus:
    """The slave's health and counters, published in the birth message and by ``status``."""

    state: str = "starting"  # starting | online | stale | error
    since: datetime | None = None  # when it entered this state
    last_ok: datetime | None = None
    last_error: str = ""
    failures: int = 0  # consecutive failed polls
    transactions: int = 0  # requests sent, retries included
    errors: int = 0  # requests that failed
    timeouts: int = 0
    crc_errors: int = 0
    exceptions: int = 0  # exception answers (busy, illegal address, …)
    retries: int = 0
    polls: int = 0  # group polls completed (skipped ones not counted)

    def describe(self) -> str:
        if self.state in ("stale", "error") and self.since:
            return f"{self.state} since {self.since.isoformat(timespec='seconds')}: {self.last_error}"
        return self.state


@dataclass
class PollResult:
    values: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


@dataclass
class Group:
    """The points of one poll group, planned into requests, and when they are due next."""

    name: str
    interval: float  # seconds
    requests: list[planner.Request]
    next_due: float = 0.0  # monotonic
    polls: int = 0  # polls of this group that went on the line (skipped back-off slots not counted)


class SlaveSource:
    """One slave (an RTU slave id or a TCP unit id) read according to its profile."""

    def __init__(
        self,
        name: str,
        slave: int,
        profile: Profile,
        *,
        interval: float,
        timeout: float,
        retries: int,
        max_gap: int,
        group_intervals: dict[str, float] | None = None,
        device: Any = None,
    ) -> None:
        self.name = name
        self.slave = slave
        self.profile = profile
        self.device = device  # the config entry, for status
        self.timeout = timeout
        self.retries = retries
        intervals = {**profile.groups, **(group_intervals or {})}
        self.groups: list[Group] = []
        for group in sorted({p.group for p in profile.points}):
            points = [p for p in profile.points if p.group == group]
            every = intervals[group] if group else interval
            self.groups.append(Group(group or "default", every, planner.plan(points, max_gap)))
        self.status = SlaveStatus()
        self.info: dict[str, str] = {}  # string points: serial number, firmware, …
        self._values: dict[str, tuple[float, float]] = {}  # name -> (value, monotonic time read)
        self._max_age = {p.name: 0.0 for p in profile.points}
        for g in self.groups:
            for r in g.requests:
                for p in r.points:
                    # A value older than this is no longer "the current value" (e.g. the bus hangs).
                    self._max_age[p.name] = 2.5 * g.interval + (1 + retries) * timeout
        self._lock = threading.Lock()
        self._next_attempt = 0.0  # monotonic time before which a stale slave is not probed

    @property
    def requests(self) -> list[planner.Request]:
        return [r for g in self.groups for r in g.requests]

    # -- agent side -------------------------------------------------------------------------------

    def read(self) -> PollResult:
        """The latest fresh values; never blocks on the line."""
        now = time.monotonic()
        result = PollResult()
        with self._lock:
            for p in self.profile.points:
                if p.type == "string":
                    continue
                got = self._values.get(p.name)
                if got is not None and now - got[1] <= self._max_age[p.name]:
                    result.values[p.name] = got[0]
                else:
                    result.missing.append(p.name)
        return result

    def status_dict(self) -> dict[str, Any]:
        st = self.status
        return {
            "state": st.state,
            "detail": st.describe(),
            "since": st.since.isoformat(timespec="seconds") if st.since else None,
            "last_ok": st.last_ok.isoformat(timespec="seconds") if st.last_ok else None,
            "slave": self.slave,
            "transactions": st.transactions,
            "errors": st.errors,
            "timeouts": st.timeouts,
            "crc_errors": st.crc_errors,
            "exceptions": st.exceptions,
            "retries": st.retries,
            "polls": st.polls,
            **({"info": dict(self.info)} if self.info else {}),
        }

    # -- bus side ---------------------------------------------------------------------------------

    def poll_group(self, link: Link, group: Group) -> None:
        """Run the group's requests on ``link`` (the bus thread). A :class:`PortError` propagates: the
        port is the bus's business, and every slave on it is affected."""
        now = time.monotonic()
        if now < self._next_attempt:
            return  # backing off a stale slave: costs nothing on the line
        probing = self.status.state == "stale"
        error: SourceError | None = None
        read_any = False
        for request in group.requests:
            try:
                words = self._read(link, request, retries=0 if probing else self.retries)
            except PortError:
                raise
            except SourceError as exc:
                error = exc
                self._drop(request)
                if isinstance(exc, DeviceTimeout):
                    # Silent slave: skip its other requests; drop everything it had.
                    for g in self.groups:
                        for r in g.requests:
                            self._drop(r)
                    break
                continue
            read_any = True
            self._store(request, words)
        self.status.polls += 1
        group.polls += 1
        self._account(read_any, error)

    def port_failed(self, error: PortError) -> None:
        """The bus lost the port: every value is gone and the slave is stale until the port is back."""
        for r in self.requests:
            self._drop(r)
        self._account(False, error, backoff=False)

    def _read(self, link: Link, request: planner.Request, retries: int) -> list[int]:
        st = self.status
        for attempt in range(1 + retries):
            st.transactions += 1
            try:
                return link.read(self.slave, request.function, request.address, request.count, self.timeout)
            except PortError:
                st.errors += 1
                raise
            except SourceError as exc:
                st.errors += 1
                if isinstance(exc, DeviceTimeout):
                    st.timeouts += 1
                elif isinstance(exc, CrcError):
                    st.crc_errors += 1
                else:
                    st.exceptions += 1
                if not isinstance(exc, _RETRYABLE) or attempt == retries:
                    raise
                st.retries += 1
                log.debug("retrying", extra={"source": self.name, "error": str(exc)})
        raise AssertionError("unreachable")

    def _store(self, request: planner.Request, words: list[int]) -> None:
        now = time.monotonic()
        values = request.values(words)
        with self._lock:
            for p in request.points:
                if p.name not in values:
                    continue
                new = values[p.name]
                old = self._values.get(p.name)
                if old is not None and p.deadband and abs(new - old[0]) < p.deadband:
                    new = old[0]  # within the deadband: keep the value, refresh its age
                self._values[p.name] = (new, now)
        self.info.update(request.texts(words))

    def _drop(self, request: planner.Request) -> None:
        with self._lock:
            for p in request.points:
                self._values.pop(p.name, None)

    def _account(self, read_any: bool, error: SourceError | None, backoff: bool = True) -> None:
        now = datetime.now(UTC)
        st = self.status
        if error is None:
            if st.state != "online":
                log.info("slave online", extra={"source": self.name})
                st.since = now
            st.state, st.failures, st.last_ok, st.last_error = "online", 0, now, ""
            self._next_attempt = 0.0
            return
        st.last_error = f"{self.name}: {error}"
        if read_any or not isinstance(error, DeviceTimeout | PortError):
            # The slave answers, but (some of) the map cannot be read: an error, not silence.
            if st.state != "error":
                log.warning("slave error", extra={"source": self.name, "error": str(error)})
                st.since = now
            st.state = "error"
            if read_any:
                st.last_ok = now
            return
        st.failures += 1
        if st.state != "stale":
            log.warning("slave stale", extra={"source": self.name, "error": str(error)})
            st.state, st.since = "stale", now
        if backoff:
            delay = min(MAX_BACKOFF_S, 2.0 ** (st.failures - 2)) if st.failures > 1 else 0.0
            self._next_attempt = time.monotonic() + delay
