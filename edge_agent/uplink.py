"""The MQTT uplink: drains the buffer to the broker with QoS1 and deletes what the broker acknowledged.

Threads: paho's network thread runs the socket and callbacks; one sender thread takes records from the
buffer and publishes them. The sender blocks on an event that the poll loop (new data), the network
thread (connected, acknowledged) and ``stop()`` set — or until the replay rate allows the next backlog
batch — so an idle agent uses no CPU here.

Delivery: a record leaves the buffer only after the broker's PUBACK for the message that carried it.
paho's callback runs under paho's own lock, so it only notes the outcome and wakes the sender, which
does the buffer work. Messages in flight when the connection drops are re-sent by paho after
reconnecting; after a restart everything still buffered is sent again. The collector deduplicates on
(device, boot, seq), so the effect is exactly once. What goes next is :mod:`edge_agent.replay`'s call.

Reconnecting: paho's exponential back-off, with a per-device random start and ceiling so that a fleet
does not reconnect in lock-step after a broker restart.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import paho.mqtt.client as mqtt

from common import schema
from common.errors import SchemaError
from common.mqtt_url import BrokerAddress
from common.topics import topic
from edge_agent.buffer import Buffer, Record
from edge_agent.config import AgentSettings
from edge_agent.mqtt_client import new_client
from edge_agent.replay import ReplayScheduler

log = logging.getLogger(__name__)
# The sender wakes at least this often even when idle, so its heartbeat proves to the watchdog that it
# is not stuck (edge_agent.systemd); one wake-up per few seconds costs nothing measurable.
HEARTBEAT_S = 5.0
CommandHandler = Callable[[dict[str, Any]], dict[str, Any]]


class _TelemetryOut(msgspec.Struct, tag="telemetry", tag_field="kind"):
    """:class:`common.schema.Telemetry` with readings already encoded (buffered as JSON)."""

    v: int
    site: str
    device: str
    boot: str
    readings: list[msgspec.Raw]
    model: str | None = None


@dataclass
class UplinkCounters:
    sent: int = 0  # messages published (first sends; paho's re-sends are not counted)
    acked: int = 0  # records acknowledged by the broker (readings and states)
    replayed: int = 0  # records sent from the backlog after a reconnect or restart
    reconnects: int = 0
    rejected: int = 0  # records the broker refused (counted as lost, never retried)
    commands: int = 0
    connected: bool = False
    last_error: str = ""


class Uplink:
    def __init__(self, settings: AgentSettings, buffer: Buffer, boot: str, version: str) -> None:
        self.settings = settings
        self.buffer = buffer
        self.boot = boot
        self.version = version
        self.address: BrokerAddress = settings.broker
        self.counters = UplinkCounters()
        self.sources: dict[str, str] = {}  # for the birth message; updated by the agent
        self.model_version: str | None = None
        self.commands: dict[str, CommandHandler] = {"ping": lambda _args: {"pong": True}}
        self._site, self._device = settings.agent.site, settings.agent.device
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._inflight: list[tuple[mqtt.MQTTMessageInfo, list[int]]] = []  # in order of publishing
        self._inflight_ids: set[int] = set()
        self._rejected: dict[int, str] = {}  # message id -> broker's reason code
        self._published: set[int] = set()  # message ids the broker acknowledged (network thread adds)
        self._epoch = 0  # bumped by every successful connect (network thread)
        self._seen_epoch = 0  # the last epoch the sender prepared for
        self._scheduler = ReplayScheduler(buffer, settings.mqtt.batch_max, settings.mqtt.replay_rate)
        self._protocol = mqtt.MQTTv5 if settings.mqtt.protocol == "5" else mqtt.MQTTv311
        self._client = self._make_client()
        self._sender = threading.Thread(target=self._send_loop, name="uplink-sender", daemon=True)
        self.heartbeat = 0.0  # monotonic time the sender last went round its loop

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._client.connect_async(
            self.address.host, self.address.port, keepalive=int(self.settings.mqtt.keepalive.total_seconds())
        )
        self._client.loop_start()
        self._sender.start()

    def notify(self) -> None:
        """Something new is in the buffer."""
        self._wake.set()

    def progress(self) -> float:
        """Monotonic time the uplink last showed it works, for the watchdog; 0.0 when a thread died.

        Working means: the sender went round its loop (it does so at least every ``HEARTBEAT_S``) and
        paho's network thread, which connects and reconnects, is alive. Disconnected but retrying counts
        as working: a broker outage must not get the agent restarted."""
        network = getattr(self._client, "_thread", None)  # paho keeps its loop_start() thread here
        if not self._sender.is_alive() or network is None or not network.is_alive():
            return 0.0
        return self.heartbeat

    def stop(self, timeout: float = 5.0) -> None:
        """Say goodbye (retained offline status), then disconnect; unsent records stay buffered."""
        self._stopping.set()
        self._wake.set()
        self._sender.join(timeout)
        if self.counters.connected:
            info = self._client.publish(
                self._status_topic, self._status(False, "shutdown"), qos=1, retain=True
            )
            # If it is not delivered, the broker publishes our Last Will instead.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        # Our bound methods as its callbacks make the client and us a reference cycle, so its socket pair
        # would wait for the garbage collector; without them it is released (and closed) as we are.
        self._client.on_connect = self._client.on_disconnect = None
        self._client.on_publish = self._client.on_message = None

    # -- paho ------------------------------------------------------------------------------------

    @property
    def _status_topic(self) -> str:
        return topic(self._site, self._device, "status")

    def _status(self, online: bool, reason: str) -> bytes:
        return schema.encode(
            schema.Status(
                v=1,
                site=self._site,
                device=self._device,
                boot=self.boot,
                ts=datetime.now(UTC),
                online=online,
                reason=reason,
                agent_version=self.version,
                sources=dict(self.sources),
            )
        )

    def _make_client(self) -> mqtt.Client:
        m = self.settings.mqtt
        client = new_client(
            self.address,
            m.client_id or self._device,
            self._protocol == mqtt.MQTTv5,
            m.ca_file,
            m.cert_file,
            m.key_file,
        )
        client.will_set(self._status_topic, self._status(False, "lost"), qos=1, retain=True)
        client.max_inflight_messages_set(m.max_inflight)
        jitter = random.Random()
        client.reconnect_delay_set(min_delay=jitter.randint(1, 3), max_delay=jitter.randint(25, 40))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.counters.last_error = f"broker refused the connection: {reason_code}"
            log.warning("broker refused connection", extra={"reason": str(reason_code)})
            return
        self.counters.connected = True
        self.counters.last_error = ""
        log.info("connected to broker", extra={"broker": repr(self.address)})
        client.publish(self._status_topic, self._status(True, "birth"), qos=1, retain=True)
        client.subscribe(topic(self._site, self._device, "cmd"), qos=1)
        self._epoch += 1
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.counters.connected:
            self.counters.reconnects += 1
            log.warning("disconnected from broker", extra={"reason": str(reason_code)})
        self.counters.connected = False

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Called under paho's own lock: only note the outcome; the sender thread does the buffer work.
        # (MQTTMessageInfo.is_published() cannot be used: it raises for a message first queued while the
        # connection was down, even after paho has sent it and the broker acknowledged it.)
        if reason_code.is_failure:
            self._rejected[mid] = str(reason_code)
        self._published.add(mid)
        self._wake.set()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        # A command may take a moment (recalibrate writes a file): never on paho's network thread.
        threading.Thread(target=self._run_command, args=(msg.payload,), name="command", daemon=True).start()

    def _run_command(self, payload: bytes) -> None:
        self.counters.commands += 1
        try:
            command = schema.decode("cmd", payload)
        except SchemaError as exc:
            log.warning("malformed command ignored", extra={"reason": exc.reason})
            return
        assert isinstance(command, schema.Command)
        handler = self.commands.get(command.cmd)
        ok, result, error = False, {}, ""
        if handler is None:
            error = f"unknown command {command.cmd!r} (known: {', '.join(sorted(self.commands))})"
        else:
            try:
                result, ok = handler(dict(command.args)), True
            except (ValueError, OSError) as exc:
                error = str(exc)
        ack = schema.CommandAck(
            v=1,
            site=self._site,
            device=self._device,
            boot=self.boot,
            id=command.id,
            ts=datetime.now(UTC),
            ok=ok,
            result=result,
            error=error,
        )
        self._client.publish(topic(self._site, self._device, "cmd/ack"), schema.encode(ack), qos=1)

    # -- sender ----------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        timeout: float | None = None
        while not self._stopping.is_set():
            self.heartbeat = time.monotonic()
            self._wake.wait(HEARTBEAT_S if timeout is None else min(timeout, HEARTBEAT_S))
            self._wake.clear()
            timeout = None
            if self._epoch != self._seen_epoch:
                self._seen_epoch = self._epoch
                self._scheduler.on_connect()
            self._reap()
            while (
                self.counters.connected
                and not self._stopping.is_set()
                and len(self._inflight) < self.settings.mqtt.max_inflight
            ):
                batch, wait = self._scheduler.next_batch(self._inflight_ids)
                if batch is None:
                    timeout = wait  # the replay rate says when the next backlog batch may go
                    break
                if not self._publish(batch.records):
                    break
                if batch.replay:
                    self.counters.replayed += len(batch.records)

    def _reap(self) -> None:
        """Delete from the buffer what the broker acknowledged."""
        published = self._published
        done = [(info, ids) for info, ids in self._inflight if info.mid in published]
        if not done:
            return
        self._inflight = [entry for entry in self._inflight if entry[0].mid not in published]
        # Forget every acknowledged id but those still in flight (status messages and command answers
        # are acknowledged too; message ids are reused after 65535).
        still = {info.mid for info, _ in self._inflight}
        for mid in list(published):  # in place: the network thread may be adding to it right now
            if mid not in still:
                published.discard(mid)
        acked: list[int] = []
        for info, ids in done:
            reason = self._rejected.pop(info.mid, None)
            if reason is not None:
                # Refused by the broker (not authorised, quota): retrying cannot help; count and report.
                self.counters.rejected += len(ids)
                self.counters.last_error = f"broker rejected a message: {reason}"
            acked.extend(ids)
        self.buffer.delete(acked)
        self._inflight_ids.difference_update(acked)
        self.counters.acked += len(acked)

    def _publish(self, records: list[Record]) -> bool:
        kind, payload = self._compose(records)
        info = self._client.publish(topic(self._site, self._device, kind), payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.counters.last_error = f"publish failed: {mqtt.error_string(info.rc)}"
            return False
        ids = [r.id for r in records]
        self._inflight.append((info, ids))
        self._inflight_ids.update(ids)
        self.counters.sent += 1
        return True

    def _compose(self, records: list[Record]) -> tuple[str, bytes]:
        first = records[0]
        if first.kind != "telemetry":
            return first.kind, first.body
        message = _TelemetryOut(
            v=schema.SCHEMA_VERSION,
            site=self._site,
            device=self._device,
            boot=first.boot,
            readings=[msgspec.Raw(r.body) for r in records],
            model=self.model_version,
        )
        return "telemetry", schema.encode(message)  # type: ignore[arg-type]
