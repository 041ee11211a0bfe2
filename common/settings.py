"""Settings: a TOML file, overridden by ``SIGNALCRAFT_*`` environment variables, validated once.

Each program declares its settings as a tree of msgspec structs. A leaf ``mqtt.url`` can be set in the
file under ``[mqtt] url = …``, by a systemd credential named ``mqtt.url`` (``LoadCredential=``, for
secrets) or by ``SIGNALCRAFT_MQTT_URL``; the environment wins, then the credential, then the file.
Validation happens before any I/O and every error names the setting and where its value came from.
Fields without a default are required: nothing silently falls back to a default host or user.

Durations are written the way people say them (``"500ms"``, ``"1s"``, ``"5m"``, ``"2h"``, ``"30d"``) and
arrive as :class:`datetime.timedelta`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
from msgspec import inspect as mi

from common.errors import ConfigError

ENV_PREFIX = "SIGNALCRAFT_"
T = TypeVar("T", bound=msgspec.Struct)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int | float) -> timedelta:
    """``"250ms"`` → 0.25 s. Bare numbers are refused: a unit is part of the value."""
    if isinstance(text, str):
        m = _DURATION.match(text)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    raise ValueError(f"expected a duration such as '500ms', '1s', '5m', '2h', got {text!r}")


@dataclass(frozen=True)
class Loaded:
    """Validated settings plus where each leaf came from (``file``, ``env``, ``default``)."""

    settings: Any
    sources: dict[str, str]


def load(cls: type[T], path: str | Path | None = None, env: Mapping[str, str] | None = None) -> T:
    """Load and validate settings of type ``cls``; raise :class:`ConfigError` naming the bad setting."""
    return load_with_sources(cls, path, env).settings


def load_with_sources(
    cls: type[T], path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Loaded:
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    origin = "defaults"
    if path is not None:
        origin = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("--config", f"file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None

    sources: dict[str, str] = {}
    leaves = list(_leaves(mi.type_info(cls), ()))
    for dotted, _ in leaves:
        if _get(raw, dotted) is not _MISSING:
            sources[dotted] = f"file {origin}"
    _apply_credentials(raw, leaves, env, sources)
    for dotted, info in leaves:
        name = ENV_PREFIX + dotted.replace(".", "_").upper()
        if name in env:
            _set(raw, dotted, _from_env(dotted, env[name], info, name))
            sources[dotted] = f"env {name}"
    _coerce_durations(raw, mi.type_info(cls), (), sources)
    try:
        settings = msgspec.convert(raw, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise _config_error(exc, sources) from None
    for dotted, _ in leaves:
        sources.setdefault(dotted, "default")
    _validate_urls(settings, leaves, sources)
    return Loaded(settings, sources)


_MISSING = object()


def _apply_credentials(raw: dict, leaves, env: Mapping[str, str], sources: dict[str, str]) -> None:
    """Secrets from systemd's ``LoadCredential=`` (``$CREDENTIALS_DIRECTORY/<dotted name>``, e.g.
    ``mqtt.url``): they override the file and are overridden by the environment. The file holds the
    value itself; surrounding whitespace (the trailing newline of ``echo``) is dropped."""
    folder = env.get("CREDENTIALS_DIRECTORY")
    if not folder:
        return
    for dotted, info in leaves:
        path = Path(folder) / dotted
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8").strip()
        _set(raw, dotted, _from_env(dotted, text, info, f"credential {dotted}"))
        sources[dotted] = f"credential {dotted}"


def _leaves(info: mi.Type, prefix: tuple[str, ...]):
    """Yield (dotted name, type info) for every scalar setting of a struct tree."""
    if isinstance(info, mi.StructType):
        for f in info.fields:
            inner = _unwrap(f.type)
            if isinstance(inner, mi.StructType):
                yield from _leaves(inner, (*prefix, f.encode_name))
            else:
                yield ".".join((*prefix, f.encode_name)), inner


def _unwrap(info: mi.Type) -> mi.Type:
    if isinstance(info, mi.Metadata):
        return _unwrap(info.type)
    if isinstance(info, mi.UnionType):
        rest = [t for t in info.types if not isinstance(t, mi.NoneType)]
        if len(rest) == 1:
            return _unwrap(rest[0])
    return info


def _get(raw: dict, dotted: str) -> Any:
    node: Any = raw
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _set(raw: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def _from_env(dotted: str, text: str, info: mi.Type, name: str) -> Any:
    """Environment values are strings; lists and tables are given as TOML (``'["a", "b"]'``)."""
    if isinstance(info, (mi.ListType, mi.DictType, mi.TupleType, mi.SetType)):
        try:
            return tomllib.loads(f"x = {text}")["x"]
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(dotted, f"{text!r} is not a TOML value: {exc}", f"env {name}") from None
    if isinstance(info, mi.BoolType):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(dotted, f"expected true or false, got {text!r}", f"env {name}")
    return text


def _coerce_durations(raw: Any, info: mi.Type, prefix: tuple[str, ...], sources: dict[str, str]) -> None:
    info = _unwrap(info)
    if not isinstance(info, mi.StructType) or not isinstance(raw, dict):
        return
    for f in info.fields:
        if f.encode_name not in raw:
            continue
        dotted = (*prefix, f.encode_name)
        inner = _unwrap(f.type)
        value = raw[f.encode_name]
        if isinstance(inner, mi.TimeDeltaType):
            try:
                raw[f.encode_name] = parse_duration(value).total_seconds()
            except ValueError as exc:
                name = ".".join(dotted)
                raise ConfigError(name, str(exc), sources.get(name)) from None
        elif isinstance(inner, mi.StructType):
            _coerce_durations(value, inner, dotted, sources)
        elif isinstance(inner, mi.ListType) and isinstance(value, list):
            for i, item in enumerate(value):
                _coerce_durations(item, inner.item_type, (*dotted[:-1], f"{dotted[-1]}[{i}]"), sources)


_PATH = re.compile(r"at `\$\.?(.*)`$")


def _config_error(exc: msgspec.ValidationError, sources: dict[str, str]) -> ConfigError:
    text = str(exc)
    m = _PATH.search(text)
    problem = _PATH.sub("", text).rstrip(" -")
    missing = re.match(r"Object missing required field `(.+)`", problem)
    setting = m.group(1) if m else ""
    if missing:
        setting = f"{setting}.{missing.group(1)}" if setting else missing.group(1)
        problem = "required setting is missing (set it in the config file or the environment)"
    setting = setting or "(top level)"
    return ConfigError(setting, problem, sources.get(setting))


def _validate_urls(settings: Any, leaves, sources: dict[str, str]) -> None:
    """Every leaf named ``url`` must be an absolute URL with a host: no implicit localhost."""
    for dotted, _ in leaves:
        if not dotted.endswith("url"):
            continue
        value = _attr(settings, dotted)
        if value in (None, ""):
            continue
        parts = urlsplit(str(value))
        if not parts.scheme or not (parts.hostname or parts.path):
            raise ConfigError(dotted, f"{value!r} is not an absolute URL", sources.get(dotted))


def _attr(obj: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        obj = getattr(obj, key, None)
    return obj


def check_scheme(setting: str, url: str, allowed: tuple[str, ...], source: str | None = None) -> None:
    """Refuse a URL whose scheme the program cannot speak, naming the setting."""
    scheme = urlsplit(url).scheme
    if scheme not in allowed:
        raise ConfigError(setting, f"scheme {scheme!r} not supported (use {' or '.join(allowed)})", source)
