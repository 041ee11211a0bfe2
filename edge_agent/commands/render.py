"""Printing for people: checks as one line each, and the agent's status."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from edge_agent.diagnose import Check

_MARK = {"ok": "[green]ok[/]  ", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}


def print_checks(checks: list[Check], console: Console | None = None) -> None:
    con = console or Console(highlight=False, soft_wrap=True)
    for c in checks:
        con.print(f"{_MARK[c.status]} [bold]{c.name}[/]: {c.line()}", markup=True)


def print_status(s: dict[str, Any], units: dict[str, str]) -> None:
    con = Console(highlight=False, soft_wrap=True)
    last = s["last"]
    con.print(f"[bold]{s['site']}/{s['device']}[/]  boot {s['boot'][:8]}  agent {s['version']}")
    score = "-" if last["score"] is None else f"{last['score']:.3f}"
    con.print(f"health: [bold]{last['state'] or 'starting'}[/]  score {score}  {last['reason']}")
    cal = s["calibration"]
    if cal["done"] < cal["needed"]:
        con.print(
            f"calibration: {cal['done']}/{cal['needed']} readings ({100 * cal['done'] // cal['needed']} %)"
        )
    else:
        con.print("calibration: done")
    t = Table("source", "port", "slave", "state", "polls", "errors")
    for name, src in s["sources"].items():
        style = {"online": "green", "stale": "red", "error": "yellow"}.get(src["state"], "")
        t.add_row(
            name,
            src["port"],
            str(src["slave"]),
            f"[{style}]{src['detail']}[/]" if style else src["detail"],
            str(src["polls"]),
            str(src["errors"]),
        )
    for name, w in s.get("waveform", {}).items():
        t.add_row(name, str(w.get("port", "")), "-", str(w.get("detail", "")), "", "")
    con.print(t)
    values = last["values"]
    if values:
        v = Table("reading", "value", "unit")
        for name in sorted(values):
            v.add_row(name, f"{values[name]:.3f}", units.get(name, ""))
        for name in last["missing"]:
            v.add_row(name, "[red]missing[/]", units.get(name, ""))
        con.print(v)
    d = s["delivery"]
    link = "[green]connected[/]" if d["connected"] else f"[red]not connected[/] {d['last_error']}"
    con.print(f"uplink: {link}, reconnects {d['reconnects']}")
    con.print(
        f"delivery: produced {d['produced']}, acked {d['acked']}, buffered {d['buffered']} "
        f"({d['buffer_bytes'] / 1024:.0f} KiB, oldest unsent {d['oldest_unsent_s']} s), "
        f"dropped {d['dropped']}"
    )
    mem = s.get("memory")  # absent from agents older than this CLI; no size where there is no /proc
    if mem and mem["rss_mib"] is not None:
        released = mem["released_at_startup_mib"]
        given = f", {released} MiB given back after start-up" if released is not None else ""
        con.print(f"memory: {mem['rss_mib']} MiB resident{given}")
    loop = s["loop"]
    if loop["crashes"]:
        con.print(f"[yellow]poll loop: {loop['crashes']} crash(es), last: {loop['last_crash']}[/]")
