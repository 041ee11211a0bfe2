"""REST handlers of alert rules and silences (maintenance windows)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import msgspec
from aiohttp import web

from cloud_collector.alerting import noise
from cloud_collector.alerting.rules import Rule, rule_from_row, validate
from cloud_collector.api.bodies import RuleRequest, SilenceRequest
from cloud_collector.api.http import body, conn, int_path, json_response, principal, scope
from cloud_collector.api.problems import BadRequest, Conflict, Forbidden, NotFound
from cloud_collector.errors import StorageError, storage_errors


class SilenceView(msgspec.Struct, kw_only=True):
    id: int
    tenant_id: int | None
    site: str | None
    device: str | None
    rule: str | None
    starts_at: datetime
    ends_at: datetime
    recur_days: list[int] | None
    recur_start: str | None
    recur_duration_s: float | None
    timezone: str
    author: str
    comment: str
    created_at: datetime
    active_now: bool


_RULE_COLUMNS = [f for f in RuleRequest.__struct_fields__]


async def list_rules(request: web.Request) -> web.Response:
    async with conn(request) as c:
        with storage_errors("listing rules"):
            rows = await c.fetch(
                "SELECT * FROM alert_rules WHERE $1::bigint IS NULL OR tenant_id IS NULL "
                "OR tenant_id = $1 ORDER BY name, id",
                scope(request),
            )
    return json_response({"rules": [rule_from_row(r) for r in rows]})


async def create_rule(request: web.Request) -> web.Response:
    req = _checked(request, await body(request, RuleRequest))
    async with conn(request) as c:
        row = await _write(
            c,
            "INSERT INTO alert_rules ({cols}, created_by) VALUES ({args}, ${n}) RETURNING *",
            req,
            principal(request).name,
        )
    return json_response(rule_from_row(row), status=201)


async def update_rule(request: web.Request) -> web.Response:
    rule_id = int_path(request, "id", "rule")
    req = _checked(request, await body(request, RuleRequest))
    async with conn(request) as c:
        await _own_rule(c, request, rule_id)
        row = await _write(
            c,
            "UPDATE alert_rules SET ({cols}, updated_at) = ({args}, now()) WHERE id = ${n} RETURNING *",
            req,
            rule_id,
        )
    return json_response(rule_from_row(row))


async def delete_rule(request: web.Request) -> web.Response:
    rule_id = int_path(request, "id", "rule")
    async with conn(request) as c:
        await _own_rule(c, request, rule_id)
        with storage_errors("deleting a rule"):
            await c.execute("DELETE FROM alert_rules WHERE id = $1", rule_id)
    return web.Response(status=204)


async def list_silences(request: web.Request) -> web.Response:
    now = datetime.now(UTC)
    include_expired = request.query.get("expired") == "true"
    async with conn(request) as c:
        with storage_errors("listing silences"):
            rows = await c.fetch(
                "SELECT * FROM silences WHERE ($1::bigint IS NULL OR tenant_id = $1) "
                "AND ($2 OR ends_at > $3) "
                "ORDER BY id DESC LIMIT 1000",
                scope(request),
                include_expired,
                now,
            )
    return json_response({"silences": [_silence(r, now) for r in rows]})


async def create_silence(request: web.Request) -> web.Response:
    req = await body(request, SilenceRequest)
    now = datetime.now(UTC)
    starts = _aware(req.starts_at) if req.starts_at else now
    ends = _aware(req.ends_at)
    if not (req.site or req.device or req.rule):
        raise BadRequest("a silence needs at least one of 'site', 'device', 'rule'")
    if ends <= starts:
        raise BadRequest("'ends_at' must be after 'starts_at'")
    recurring = (req.recur_days, req.recur_start, req.recur_duration_s)
    if any(v is not None for v in recurring) and not all(v is not None for v in recurring):
        raise BadRequest("a recurring silence needs recur_days, recur_start and recur_duration_s")
    try:
        noise.zone(req.timezone)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    start_time = time.fromisoformat(req.recur_start) if req.recur_start else None
    async with conn(request) as c:
        with storage_errors("creating a silence"):
            row = await c.fetchrow(
                "INSERT INTO silences (tenant_id, site, device, rule, starts_at, ends_at, recur_days, "
                "recur_start, recur_duration_s, timezone, author, comment) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *",
                scope(request),
                req.site,
                req.device,
                req.rule,
                starts,
                ends,
                sorted(set(req.recur_days)) if req.recur_days else None,
                start_time,
                req.recur_duration_s,
                req.timezone,
                principal(request).name,
                req.comment.strip(),
            )
    return json_response(_silence(row, now), status=201)


async def expire_silence(request: web.Request) -> web.Response:
    """Ends a silence now (kept for the record, not deleted)."""
    silence_id = int_path(request, "id", "silence")
    now = datetime.now(UTC)
    async with conn(request) as c:
        with storage_errors("expiring a silence"):
            row = await c.fetchrow(
                "UPDATE silences SET ends_at = "
                "greatest(starts_at + interval '1 microsecond', least(ends_at, $3)) "
                "WHERE id = $1 AND ($2::bigint IS NULL OR tenant_id = $2) RETURNING *",
                silence_id,
                scope(request),
                now,
            )
    if row is None:
        raise NotFound(f"no silence {silence_id}")
    return json_response(_silence(row, now))


def _checked(request: web.Request, req: RuleRequest) -> RuleRequest:
    who = principal(request)
    if req.tenant_id is not None and not who.platform and req.tenant_id != who.tenant_id:
        raise Forbidden("a tenant's admin writes rules of its own tenant only")
    if not who.platform:
        req = msgspec.structs.replace(req, tenant_id=who.tenant_id)
    now = datetime.now(UTC)
    probe = Rule(
        id=0,
        created_by="",
        created_at=now,
        updated_at=now,
        **{f: getattr(req, f) for f in RuleRequest.__struct_fields__},
    )
    problem = validate(probe)
    if problem:
        raise BadRequest(problem)
    return req


async def _write(c, sql: str, req: RuleRequest, extra: object):
    cols = ", ".join(_RULE_COLUMNS)
    args = ", ".join(f"${i}" for i in range(1, len(_RULE_COLUMNS) + 1))
    try:
        with storage_errors("writing a rule"):
            return await c.fetchrow(
                sql.format(cols=cols, args=args, n=len(_RULE_COLUMNS) + 1),
                *[getattr(req, f) for f in _RULE_COLUMNS],
                extra,
            )
    except StorageError as exc:
        if exc.__cause__ is not None and "alert_rules_identity" in str(exc.__cause__):
            raise Conflict(f"a rule {req.name!r} with the same scope exists") from None
        if exc.__cause__ is not None and "foreign key" in str(exc.__cause__):
            raise BadRequest(f"no tenant {req.tenant_id}") from None
        raise


async def _own_rule(c, request: web.Request, rule_id: int) -> None:
    with storage_errors("reading a rule"):
        tenant = await c.fetchrow("SELECT tenant_id FROM alert_rules WHERE id = $1", rule_id)
    who = principal(request)
    if tenant is None or (not who.platform and tenant["tenant_id"] not in (who.tenant_id,)):
        # Global rules are the platform's: a tenant sees them but overrides them with its own.
        raise NotFound(f"no rule {rule_id} of yours")


def _silence(row, now: datetime) -> SilenceView:
    data = dict(row)
    data["recur_start"] = row["recur_start"].strftime("%H:%M") if row["recur_start"] else None
    data["active_now"] = row["starts_at"] <= now < row["ends_at"] and noise.in_recurring_window(row, now)
    return msgspec.convert(data, SilenceView)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
