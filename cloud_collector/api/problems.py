"""HTTP errors as RFC 7807 ``application/problem+json``, rendered by one middleware.

Handlers raise :class:`Problem` subclasses (``raise NotFound(f"no device {name!r}")``); aiohttp's own
HTTP exceptions (unknown route, wrong method) and :class:`StorageError` are translated here too, so
every error a client sees has the same shape: ``{"type", "title", "status", "detail", "instance"}``.
"""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web

from cloud_collector.errors import StorageError

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"


class ProblemDoc(msgspec.Struct, omit_defaults=True):
    title: str
    status: int
    detail: str = ""
    type: str = "about:blank"
    instance: str = ""


class Problem(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str = "", headers: dict[str, str] | None = None) -> None:
        self.detail = detail
        self.headers = headers or {}
        super().__init__(detail or self.title)


class BadRequest(Problem):
    status = 400
    title = "Bad Request"


class Unauthorized(Problem):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail, {"WWW-Authenticate": 'Bearer realm="signalcraft"'})


class Forbidden(Problem):
    status = 403
    title = "Forbidden"


class NotFound(Problem):
    status = 404
    title = "Not Found"


class Conflict(Problem):
    status = 409
    title = "Conflict"


class TooManyRequests(Problem):
    status = 429
    title = "Too Many Requests"


class ServiceUnavailable(Problem):
    status = 503
    title = "Service Unavailable"


def render(
    request: web.Request, status: int, title: str, detail: str = "", headers: dict[str, str] | None = None
) -> web.Response:
    doc = ProblemDoc(title=title, status=status, detail=detail, instance=request.path)
    return web.Response(
        body=msgspec.json.encode(doc), status=status, content_type=CONTENT_TYPE, headers=headers
    )


@web.middleware
async def problem_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as exc:
        return render(request, exc.status, exc.title, exc.detail, exc.headers)
    except StorageError as exc:
        log.warning("%s %s: %s", request.method, request.path, exc)
        if exc.retryable:
            return render(request, 503, "Service Unavailable", "the database is unavailable")
        return render(request, 500, "Internal Server Error", "the database refused the request")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are not problems
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return render(request, exc.status, exc.reason or "Error", "", allow)
    except Exception:  # the top level of every request: log it once, answer in the same shape as the rest
        log.exception("%s %s failed", request.method, request.path)
        return render(request, 500, "Internal Server Error", "")
