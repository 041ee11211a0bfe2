"""How a message leaves: an HMAC-signed webhook, or an e-mail through SMTP.

Webhook requests carry ``X-SignalCraft-Timestamp`` and ``X-SignalCraft-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with the channel's secret, so a receiver can check both
origin and freshness, and ``X-SignalCraft-Delivery``, the same on every retry of one message, so a
receiver can drop a duplicate (delivery is at least once).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import msgspec

TIMEOUT = 10.0


class DeliveryError(Exception):
    """The channel did not take the message; the dispatcher retries with backoff."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


async def send_webhook(
    session: aiohttp.ClientSession, url: str, secret: str, delivery: str, payload: dict[str, Any]
) -> None:
    body = msgspec.json.encode(payload)
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-SignalCraft-Timestamp": stamp,
        "X-SignalCraft-Delivery": delivery,
        "X-SignalCraft-Signature": signature(secret, stamp, body),
    }
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=TIMEOUT)
        ) as response:
            if response.status >= 300:
                raise DeliveryError(f"webhook answered {response.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(f"webhook unreachable: {type(exc).__name__}: {exc}") from exc


async def send_email(smtp_url: str, sender: str, to: str, subject: str, text: str) -> None:
    if not smtp_url:
        raise DeliveryError("no SMTP server configured (notify smtp_url)")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(text)
    try:
        await asyncio.to_thread(_smtp_send, smtp_url, message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}") from exc


def _smtp_send(smtp_url: str, message: EmailMessage) -> None:
    url = urlsplit(smtp_url)
    host = url.hostname or "localhost"
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, url.port or 465, timeout=TIMEOUT, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(host, url.port or 25, timeout=TIMEOUT)
    with client:
        if url.scheme == "smtp+starttls":
            client.starttls(context=ssl.create_default_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)
