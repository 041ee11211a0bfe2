"""The MQTT side of ingest: a paho-mqtt client in its own network thread, feeding the asyncio loop.

Delivery guarantees
    QoS1 with manual acknowledgement: paho does not PUBACK on receipt; the writer calls :meth:`ack` only
    after the message's rows (or its dead letter) are committed. The session is persistent (MQTT v5
    ``clean_start=False`` + session expiry, or 3.1.1 ``clean_session=False``) under a stable client id,
    so messages that were in flight when the collector stopped are redelivered when it comes back.
    A message received on an earlier connection is never acknowledged on a later one: the broker
    redelivers it there (same packet id, DUP set), and acknowledging the stale copy could acknowledge
    an unrelated message that reuses the id.

Protocol
    MQTT v5 first, with a shared subscription ``$share/<group>/signalcraft/v1/+/+/<kind>`` so several
    collectors split the load. A broker that answers "unsupported protocol version", or that accepts the
    TCP connection but sends no CONNACK within :data:`V5_CONNACK_TIMEOUT` (amqtt speaks only 3.1.1 and
    chokes on a v5 CONNECT with properties), gets a 3.1.1 client with a plain subscription: every
    collector then sees every message, which is still correct (ingest is idempotent) but does not scale
    out. Once a broker has answered in v5 we never fall back.

Backpressure
    The thread hands messages over through a deque bounded by a semaphore of ``queue_size`` slots. When
    the writer falls behind (a slow or unreachable database) the network thread *blocks* in
    ``on_message`` instead of dropping: it stops reading the socket, TCP pushes back on the broker, and
    the broker keeps the messages in our session. Under v5 the broker is also told
    ``Receive Maximum = queue_size`` so it rarely gets that far. A blocked thread also stops sending
    keep-alives; if the broker then drops the connection, paho reconnects and the unacknowledged messages
    are redelivered (and deduplicated).

Hand-over cost
    The network thread wakes the event loop only when the writer is actually waiting, not once per
    message: a thread-safe wake-up is a system call, and at 10k messages/s per-message wake-ups cost more
    CPU (under the GIL, shared with paho) than validating the messages. The writer takes whole batches.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud_collector.config import MqttSettings
from common.mqtt_url import BrokerAddress
from common.topics import fleet_filter

log = logging.getLogger(__name__)

KINDS = ("telemetry", "state", "status")
_UNSUPPORTED_PROTOCOL = 0x84  # CONNACK reason code of a broker that does not speak MQTT v5
_KEEPALIVE = 30
V5_CONNACK_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message as it left the network thread."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: float  # collector clock, time.time()
    epoch: int  # which connection delivered it (see "Delivery guarantees")
    client_id: str | None = None  # only when a v5 publisher sends it as a user property


class MqttConsumer:
    """Connects, subscribes, and hands each message to the asyncio loop; :meth:`ack` after commit."""

    def __init__(self, settings: MqttSettings, queue_size: int) -> None:
        self._settings = settings
        self._address = BrokerAddress.parse(settings.url)
        self._queue_size = queue_size
        self._slots = threading.BoundedSemaphore(queue_size)
        self._pending: deque[Inbound] = deque()
        self._wake_lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._protocol = mqtt.MQTTv5
        self._epoch = 0
        self._closing = False
        self._v5_confirmed = False
        self._tasks: set[asyncio.Future] = set()
        self._subscribed = asyncio.Event()
        self.connected = False
        self.last_error = "not connected yet"

    # -- lifecycle (event loop thread) -------------------------------------------------------------------

    @property
    def protocol(self) -> str:
        return "5" if self._protocol == mqtt.MQTTv5 else "3.1.1"

    @property
    def depth(self) -> int:
        """Messages waiting between the network thread and the writer."""
        return len(self._pending)

    async def start(self, wait: float = 10.0) -> None:
        """Start connecting; return once subscribed or after ``wait`` s (paho keeps retrying)."""
        self._loop = asyncio.get_running_loop()
        await self._start_client()
        try:
            await asyncio.wait_for(self._subscribed.wait(), wait)
        except TimeoutError:
            log.warning("MQTT broker %r not reachable yet (%s); retrying in the background",
                        self._address, self.last_error)

    async def wait_subscribed(self, timeout: float) -> None:
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    def pause(self) -> None:
        """Stop handing messages over (shutdown); what arrives from now on stays unacknowledged."""
        self._closing = True
        self._wake()

    @property
    def paused(self) -> bool:
        return self._closing

    async def stop(self) -> None:
        """Disconnect cleanly: PUBACKs already queued by :meth:`ack` go out before the DISCONNECT."""
        self._closing = True
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.get_running_loop().run_in_executor(None, client.loop_stop)
        self.connected = False

    # -- hand-over (event loop thread) -------------------------------------------------------------------

    def take(self, limit: int) -> list[Inbound]:
        """Up to ``limit`` messages that are waiting, without blocking; frees their queue slots."""
        pending = self._pending
        n = min(limit, len(pending))
        batch = [pending.popleft() for _ in range(n)]
        if n:
            self._slots.release(n)
        return batch

    async def wait(self, timeout: float | None) -> None:
        """Until a message is waiting, :meth:`pause` was called, or ``timeout`` s passed."""
        if self._pending or self._closing:
            return
        assert self._loop is not None
        waiter = self._loop.create_future()
        with self._wake_lock:
            if self._pending:  # arrived between the check above and taking the lock
                return
            self._waiter = waiter
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            with self._wake_lock:
                self._waiter = None

    def _wake(self) -> None:
        """Any thread: resolve the writer's wait, if it is waiting (one wake-up per wait, not per message)."""
        with self._wake_lock:
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._call_in_loop(_resolve, waiter)

    def ack(self, message: Inbound) -> None:
        """Acknowledge a committed message to the broker (no-op for QoS0 or a stale connection)."""
        client = self._client
        if client is None or message.qos == 0 or message.epoch != self._epoch:
            return
        client.ack(message.mid, message.qos)

    # -- client construction ----------------------------------------------------------------------------

    async def _start_client(self) -> None:
        s, addr = self._settings, self._address
        v5 = self._protocol == mqtt.MQTTv5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=self._protocol,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if addr.username:
            client.username_pw_set(addr.username, addr.password)
        if addr.tls:
            client.tls_set_context(ssl.create_default_context())
        client.enable_logger(logging.getLogger("paho"))
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_socket_open = self._on_socket_open
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        properties = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = int(s.session_expiry.total_seconds())
            properties.ReceiveMaximum = min(self._queue_size, 65535)
        client.connect_async(addr.host, addr.port, keepalive=_KEEPALIVE,
                             clean_start=False if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                             properties=properties)
        self._client = client
        client.loop_start()

    def _schedule_downgrade(self) -> None:
        task = asyncio.ensure_future(self._downgrade())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _arm_connack_timer(self, client: mqtt.Client) -> None:
        def expired() -> None:
            if client is self._client and not self._v5_confirmed and not self._closing:
                log.warning("no CONNACK to our MQTT v5 CONNECT within %.0f s", V5_CONNACK_TIMEOUT)
                self._schedule_downgrade()

        assert self._loop is not None
        self._loop.call_later(V5_CONNACK_TIMEOUT, expired)

    async def _downgrade(self) -> None:
        """The broker refused v5: reconnect with 3.1.1 and a plain (unshared) subscription."""
        if self._protocol != mqtt.MQTTv5 or self._client is None:
            return
        log.warning("broker %r does not speak MQTT v5; falling back to 3.1.1 without a shared subscription",
                    self._address)
        old, self._client = self._client, None
        old.disconnect()
        await asyncio.get_running_loop().run_in_executor(None, old.loop_stop)
        self._protocol = mqtt.MQTTv311
        if not self._closing:
            await self._start_client()

    # -- paho callbacks (network thread) ----------------------------------------------------------------

    def _filters(self) -> list[str]:
        # An empty share_group means a plain subscription: mosquitto (2.0) does not restore shared
        # subscriptions after a broker restart, so messages published before the collector re-subscribes
        # would reach nobody. A single collector on mosquitto should use the plain one.
        group = (self._settings.share_group or None) if self._protocol == mqtt.MQTTv5 else None
        return [fleet_filter(kind, group) for kind in KINDS]

    def _on_connect(self, client, userdata, flags, reason: ReasonCode, properties) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            if self._protocol == mqtt.MQTTv5 and reason.value == _UNSUPPORTED_PROTOCOL:
                self._call_in_loop(self._schedule_downgrade)
            else:
                log.error("MQTT connect to %r refused: %s", self._address, reason)
            return
        self._epoch += 1
        self._v5_confirmed = self._protocol == mqtt.MQTTv5
        log.info("connected to MQTT broker %r (v%s, session present: %s)",
                 self._address, self.protocol, flags.session_present)
        # Subscribe on every connect: harmless when the session kept the subscriptions, needed when not.
        if self._protocol == mqtt.MQTTv5:
            client.subscribe([(flt, SubscribeOptions(qos=1)) for flt in self._filters()])
        else:
            client.subscribe([(flt, 1) for flt in self._filters()])

    def _on_socket_open(self, client, userdata, sock) -> None:
        if self._protocol == mqtt.MQTTv5 and not self._v5_confirmed:
            self._call_in_loop(self._arm_connack_timer, client)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            self.last_error = f"subscription refused: {', '.join(failed)}"
            log.error("MQTT subscription to %s refused: %s", self._filters(), ", ".join(failed))
            return
        self.connected = True
        self.last_error = ""
        self._call_in_loop(self._subscribed.set)

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        if self.connected and not self._closing:
            log.warning("disconnected from MQTT broker %r: %s", self._address, reason)
        self.connected = False
        self.last_error = f"disconnected: {reason}"
        self._call_in_loop(self._subscribed.clear)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        item = Inbound(msg.topic, msg.payload, msg.mid, msg.qos, time.time(), self._epoch, _client_id(msg))
        # Block (see "Backpressure") rather than drop; wake up now and then to notice a shutdown.
        while not self._slots.acquire(timeout=0.2):
            if self._closing:
                return
        if self._closing:
            self._slots.release()
            return
        self._pending.append(item)
        self._wake()  # after the append, under the lock: a writer about to wait sees one or the other

    def _call_in_loop(self, fn, *args) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _client_id(msg: mqtt.MQTTMessage) -> str | None:
    props = getattr(msg, "properties", None)
    for key, value in getattr(props, "UserProperty", None) or ():
        if key == "client_id":
            return value[:128]
    return None
