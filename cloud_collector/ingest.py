"""The writer: batches messages from the MQTT consumer, validates, stores, runs the alert rules, acks.

One batch is at most ``ingest.batch_size`` messages or ``ingest.flush_interval`` of waiting, whichever
comes first, and one database transaction:

    validate -> dead letters + store.save() -> alert rules -> COMMIT -> events -> PUBACK every message

A message is acknowledged to the broker only after its rows (or its dead letter) are committed, so a
crash anywhere before that means redelivery, and redelivery is harmless (idempotent inserts). When the
database is unreachable the batch is retried with backoff and nothing new is taken from the queue, which
is how backpressure reaches the broker (see :mod:`cloud_collector.mqtt_consumer`). When the database
refuses a batch outright (a value PostgreSQL cannot store), the batch is replayed one message per
transaction so only the poisonous message becomes a dead letter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import msgspec

from cloud_collector import alerts, store
from cloud_collector.cache import LatestCache
from cloud_collector.config import IngestSettings
from cloud_collector.errors import StorageError, storage_errors
from cloud_collector.events import EventBus
from cloud_collector.metrics import Metrics
from cloud_collector.mqtt_consumer import Inbound, MqttConsumer
from cloud_collector.ratelimit import DeviceRateLimit
from common.errors import SchemaError
from common.schema import Telemetry, decode
from common.topics import Topic

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


@dataclass(slots=True)
class Parsed:
    accepted: list[tuple[Inbound, store.Received]] = field(default_factory=list)
    rejected: list[tuple[Inbound, store.DeadLetter]] = field(default_factory=list)
    limited: int = 0  # of the rejected, refused by the per-device rate limit


class DeviceStateEvent(msgspec.Struct, kw_only=True):
    device: str
    site: str
    state: str
    previous: str | None
    score: float | None
    ts: datetime
    reason: str


_TOPICS: dict[str, Topic] = {}
_TOPIC_CACHE_SIZE = 200_000  # a fleet's topics; cleared (not evicted one by one) when full


def _parse_topic(name: str) -> Topic:
    # Parsing checks every name against its pattern; a fleet publishes on the same topics all day.
    topic = _TOPICS.get(name)
    if topic is None:
        try:
            topic = Topic.parse(name)
        except ValueError as exc:
            raise SchemaError(f"bad topic: {exc}") from None
        if len(_TOPICS) >= _TOPIC_CACHE_SIZE:
            _TOPICS.clear()
        _TOPICS[name] = topic
    return topic


def validate(item: Inbound) -> store.Received:
    """The message, or :class:`SchemaError` with the precise reason it is refused."""
    topic = _parse_topic(item.topic)
    try:
        message = decode(topic.kind, item.payload)
    except RecursionError:  # "[[[[…" thousands deep: the JSON parser gives up before any schema check
        raise SchemaError("not valid JSON: nested too deeply") from None
    if (message.site, message.device) != (topic.site, topic.device):
        raise SchemaError(
            f"payload names {message.site}/{message.device} but was published on the topic of "
            f"{topic.site}/{topic.device}"
        )
    return store.Received(message, _utc(item.received_at))


def parse(batch: list[Inbound], limit: DeviceRateLimit | None = None) -> Parsed:
    out = Parsed()
    for item in batch:
        try:
            received = validate(item)
            if limit is not None and not limit.allow(received.message.device):
                out.limited += 1
                raise SchemaError(limit.reason(received.message.device))
            out.accepted.append((item, received))
        except SchemaError as exc:
            log.warning("dead letter from %s: %s", item.topic, exc.reason)
            out.rejected.append((item, _dead_letter(item, exc.reason)))
    return out


class Writer:
    """Takes messages from the consumer until it is paused and drained; see the module docstring."""

    def __init__(self, consumer: MqttConsumer, pool: asyncpg.Pool, bus: EventBus, metrics: Metrics,
                 settings: IngestSettings, cache: LatestCache | None = None) -> None:
        self._consumer = consumer
        self._cache = cache
        self._limit = DeviceRateLimit(settings.device_rate_limit, settings.device_burst)
        self._pool = pool
        self._bus = bus
        self._metrics = metrics
        self._batch_size = settings.batch_size
        self._flush_interval = settings.flush_interval.total_seconds()
        # The batch being stored. It outlives a crash of run(): its messages are not acknowledged until
        # stored, and the broker will not resend them on this connection, so dropping it would stall
        # them (and, with the in-flight window full, everything behind them) until a reconnect.
        self._pending: list[Inbound] = []

    async def run(self) -> None:
        stopping = False
        while not stopping:
            if not self._pending:
                self._pending, stopping = await self._collect()
            if self._pending:
                await self._flush_until_stored(self._pending)  # clears _pending once acknowledged

    async def _collect(self) -> tuple[list[Inbound], bool]:
        """A batch: ``batch_size`` messages, or what arrived within ``flush_interval`` of the first."""
        consumer = self._consumer
        batch: list[Inbound] = []
        deadline = 0.0
        while True:
            batch += consumer.take(self._batch_size - len(batch))
            if len(batch) >= self._batch_size:
                return batch, False
            if consumer.paused:
                return batch, True  # what is waiting was taken: drain it, then stop
            if not batch:
                await consumer.wait(None)
                continue
            if not deadline:
                deadline = time.monotonic() + self._flush_interval
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return batch, False
            await consumer.wait(remaining)

    async def _flush_until_stored(self, batch: list[Inbound]) -> None:
        delay = 0.5
        parsed = parse(batch, self._limit)
        while True:
            try:
                await self._flush(parsed)
                return
            except StorageError as exc:
                if not exc.retryable:
                    raise
                self._metrics.batch_retries += 1
                log.warning("batch of %d not stored (%s); retrying in %.1f s", len(batch), exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    async def _flush(self, parsed: Parsed) -> None:
        try:
            saved, changes = await self._commit(parsed.accepted, [dl for _, dl in parsed.rejected])
        except StorageError as exc:
            if exc.retryable:
                raise
            log.warning("database refused a batch (%s); storing its messages one by one", exc)
            saved, changes = await self._commit_one_by_one(parsed)
        committed = time.time()
        await self._publish(saved, changes)
        # The point of no return: once acknowledged, the broker may reuse these message ids, so a retry
        # after a crash below must not acknowledge them again.
        self._pending = []
        for item, _ in parsed.accepted:
            self._consumer.ack(item)
        for item, _ in parsed.rejected:
            self._consumer.ack(item)
        self._count(parsed, saved, changes, committed)
        cached = [received for _, received in parsed.accepted]
        if self._cache is not None and cached and not await self._cache.update(cached):
            self._metrics.cache_errors += 1

    async def _commit(
        self, accepted: list[tuple[Inbound, store.Received]], letters: list[store.DeadLetter]
    ) -> tuple[store.Saved, list[alerts.AlertChange]]:
        saved, changes = store.Saved(), []
        with storage_errors("storing a batch"):
            async with self._pool.acquire() as conn, conn.transaction():
                await store.save_dead_letters(conn, letters)
                if accepted:
                    saved = await store.save(conn, [received for _, received in accepted])
                    changes = await _apply_rules(conn, saved)
        return saved, changes

    async def _commit_one_by_one(self, parsed: Parsed) -> tuple[store.Saved, list[alerts.AlertChange]]:
        total, changes = store.Saved(), []
        await self._commit([], [dl for _, dl in parsed.rejected])
        for item, received in list(parsed.accepted):
            try:
                saved, more = await self._commit([(item, received)], [])
            except StorageError as exc:
                if exc.retryable:
                    raise
                parsed.accepted.remove((item, received))
                parsed.rejected.append((item, _dead_letter(item, f"database refused the message: {exc}")))
                await self._commit([], [parsed.rejected[-1][1]])
                continue
            _merge(total, saved)
            changes += more
        return total, changes

    async def _publish(self, saved: store.Saved, changes: list[alerts.AlertChange]) -> None:
        for site, s in saved.current_states:
            previous = s.previous.value if s.previous else None
            await self._bus.emit("device.state", DeviceStateEvent(
                device=s.device, site=site, state=s.state.value, previous=previous, score=s.score, ts=s.ts,
                reason=s.reason))
        for change in changes:
            await self._bus.emit(change.event, change.alert)

    def _count(self, parsed: Parsed, saved: store.Saved, changes: list[alerts.AlertChange],
               committed: float) -> None:
        m = self._metrics
        m.batches += 1
        m.acked += len(parsed.accepted) + len(parsed.rejected)
        for _, received in parsed.accepted:
            msg = received.message
            if isinstance(msg, Telemetry):
                m.commit_lag.observe(committed - msg.readings[-1].ts.timestamp())
        for item, _ in parsed.accepted + parsed.rejected:
            m.received[_kind(item.topic)] += 1
        for item, _ in parsed.accepted:
            m.stored[_kind(item.topic)] += 1
        m.readings_stored += saved.readings_stored
        m.duplicates += saved.readings_duplicate + saved.states_duplicate
        m.dead_letters += len(parsed.rejected)
        m.rate_limited += parsed.limited
        for change in changes:
            m.alerts[change.event] += 1


async def _apply_rules(conn: asyncpg.Connection, saved: store.Saved) -> list[alerts.AlertChange]:
    """Data flows one way: what the store changed is what the rules see."""
    changes: list[alerts.AlertChange] = []
    changes += await alerts.on_data(conn, saved.devices_with_data, datetime.now(UTC))
    for site, state in saved.current_states:
        changes += await alerts.on_state(conn, site, state)
    for status in saved.current_statuses:
        changes += await alerts.on_status(conn, status)
    return changes


def _merge(total: store.Saved, part: store.Saved) -> None:
    total.readings_stored += part.readings_stored
    total.readings_duplicate += part.readings_duplicate
    total.states_stored += part.states_stored
    total.states_duplicate += part.states_duplicate
    total.current_states += part.current_states
    total.current_statuses += part.current_statuses
    total.devices_with_data |= part.devices_with_data


def _dead_letter(item: Inbound, reason: str) -> store.DeadLetter:
    try:
        device: str | None = Topic.parse(item.topic).device
    except ValueError:
        device = None
    return store.DeadLetter(_utc(item.received_at), item.topic, item.client_id, device, reason, item.payload)


def _kind(topic: str) -> str:
    kind = topic.rsplit("/", 1)[-1]
    return kind if kind in ("telemetry", "state", "status") else "other"


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
