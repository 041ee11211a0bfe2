"""The minimum role of every route: one table, checked by the middleware, tested role by role.

A route missing from :data:`POLICY` and :data:`PUBLIC` is refused to everyone (default deny), and
``tests/test_collector_auth_rbac.py`` fails when a served route is in neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud_collector.auth.principal import Role

V, T, A = Role.VIEWER, Role.TECHNICIAN, Role.ADMIN

# No credentials needed. Probes and metrics are for load balancers and Prometheus on the operator's
# network and carry no tenant data (counts only); the dashboard's files are public, its data is not;
# the OpenAPI document describes the API, it holds nothing of anyone's.
PUBLIC = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/auth/login"),
        ("GET", "/"),
        ("GET", "/dashboard/{name}"),
    }
)


@dataclass(frozen=True, slots=True)
class Need:
    role: Role
    platform: bool = False  # only a principal without a tenant (the platform operator)


POLICY: dict[tuple[str, str], Need] = {
    ("POST", "/api/v1/auth/logout"): Need(V),
    ("GET", "/api/v1/auth/me"): Need(V),
    ("GET", "/api/v1/stream"): Need(V),
    ("GET", "/api/v1/devices"): Need(V),
    ("GET", "/api/v1/devices/{device}"): Need(V),
    ("PATCH", "/api/v1/devices/{device}"): Need(A),
    ("GET", "/api/v1/devices/{device}/readings"): Need(V),
    ("GET", "/api/v1/devices/{device}/states"): Need(V),
    ("GET", "/api/v1/alerts"): Need(V),
    ("GET", "/api/v1/alerts/{id}"): Need(V),
    ("POST", "/api/v1/alerts/{id}/ack"): Need(T),
    ("POST", "/api/v1/alerts/{id}/comments"): Need(T),
    ("POST", "/api/v1/alerts/{id}/feedback"): Need(T),
    ("GET", "/api/v1/reports/false-alarms"): Need(V),
    ("GET", "/api/v1/silences"): Need(V),
    ("POST", "/api/v1/silences"): Need(T),
    ("DELETE", "/api/v1/silences/{id}"): Need(T),
    ("GET", "/api/v1/rules"): Need(V),
    ("POST", "/api/v1/rules"): Need(A),
    ("PUT", "/api/v1/rules/{id}"): Need(A),
    ("DELETE", "/api/v1/rules/{id}"): Need(A),
    ("GET", "/api/v1/channels"): Need(A),
    ("POST", "/api/v1/channels"): Need(A),
    ("DELETE", "/api/v1/channels/{id}"): Need(A),
    ("GET", "/api/v1/users"): Need(A),
    ("POST", "/api/v1/users"): Need(A),
    ("DELETE", "/api/v1/users/{id}"): Need(A),
    ("GET", "/api/v1/apikeys"): Need(A),
    ("POST", "/api/v1/apikeys"): Need(A),
    ("DELETE", "/api/v1/apikeys/{id}"): Need(A),
    ("GET", "/api/v1/tenants"): Need(V),
    ("POST", "/api/v1/tenants"): Need(A, platform=True),
    ("GET", "/api/v1/sites"): Need(V),
    ("PUT", "/api/v1/sites/{site}"): Need(A, platform=True),
}
