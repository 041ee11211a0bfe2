"""What every handler needs: JSON in and out, a pooled connection, query parameters, the principal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from cloud_collector.api.problems import BadRequest, NotFound
from cloud_collector.auth.context import PRINCIPAL
from cloud_collector.auth.principal import Principal
from cloud_collector.errors import storage_errors
from cloud_collector.runtime import POOL

T = TypeVar("T")
MAX_LIMIT = 10_000


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(payload), status=status, content_type="application/json")


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def scope(request: web.Request) -> int | None:
    """The tenant whose data this request may see; None: every tenant (the platform operator)."""
    return request[PRINCIPAL].tenant_id


async def body(request: web.Request, type_: type[T]) -> T:
    """The request's JSON body as ``type_``, or 400 naming what is wrong."""
    raw = await request.read()
    try:
        return msgspec.json.decode(raw or b"{}", type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BadRequest(f"expected a JSON {type_.__name__}: {exc}") from None


class conn:
    """``async with conn(request) as c``: a pooled connection, with pool errors translated."""

    def __init__(self, request: web.Request) -> None:
        self._cm = request.app[POOL].acquire()

    async def __aenter__(self):
        with storage_errors("acquiring a database connection"):
            return await self._cm.__aenter__()

    async def __aexit__(self, *exc_info) -> None:
        with storage_errors("releasing a database connection"):
            await self._cm.__aexit__(*exc_info)


def time_param(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name!r} is not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def int_param(request: web.Request, name: str, default: int, low: int = 1, high: int = MAX_LIMIT) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name!r} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name!r} must be between {low} and {high}, got {value}")
    return value


def choice_param(
    request: web.Request, name: str, choices: tuple[str, ...], default: str | None
) -> str | None:
    text = request.query.get(name, default)
    if text is not None and text not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}, got {text!r}")
    return text


def int_path(request: web.Request, name: str, what: str) -> int:
    text = request.match_info[name]
    try:
        value = int(text)
    except ValueError:
        raise NotFound(f"no {what} {text!r}") from None
    if not 0 < value < 2**63:
        raise NotFound(f"no {what} {text!r}")
    return value
