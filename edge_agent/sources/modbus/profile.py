"""Register maps ("profiles"): declarative TOML files, validated at load.

A profile describes one kind of device. Addresses are the 0-based *protocol* addresses that go on the
wire; a manual's "register 40001" is holding register address 0, "30011" is input register address 10.
A physical value is ``raw * scale + offset``.

    [profile]
    name = "signalcraft-sim-compressor"
    source = "where the register documentation comes from"

    [[points]]
    name = "suction_pressure"
    function = 4          # 1 coils, 2 discrete inputs, 3 holding registers, 4 input registers
    address = 0
    type = "float32"      # bit int16 uint16 int32 uint32 int64 uint64 float32 float64 string
    order = "ABCD"        # ABCD CDAB BADC DCBA
    scale = 1.0
    offset = 0.0
    unit = "bar"
    deadband = 0.05       # optional: a change smaller than this keeps the previous value
    group = "slow"        # optional: a poll group declared under [groups]; default: every poll

    [groups]
    slow = "10s"          # default interval of the group; [[modbus]] groups = { slow = "1m" } overrides it
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import ConfigError
from common.settings import parse_duration
from edge_agent.sources.modbus import decode

PROFILES_DIR = Path(__file__).with_name("profiles")
FUNCTIONS = {1: "coils", 2: "discrete inputs", 3: "holding registers", 4: "input registers"}


@dataclass(frozen=True, slots=True)
class Point:
    name: str
    function: int
    address: int
    type: str
    order: str = "ABCD"
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    length: int = 0  # registers, for strings only
    deadband: float = 0.0
    group: str = ""  # poll group ("" = every poll of the device)

    @property
    def width(self) -> int:
        """How many registers (or bits) the point occupies."""
        if self.type == "bit":
            return 1
        if self.type == "string":
            return self.length
        return decode.registers_for(self.type)

    def value(self, words: list[int]) -> float:
        """Physical value of the point from its raw registers (or bit)."""
        if self.type == "bit":
            return float(words[0])
        if self.type == "string":
            raise TypeError(f"{self.name}: a string point has no numeric value; use text()")
        return decode.decode(words, self.type, self.order) * self.scale + self.offset

    def text(self, words: list[int]) -> str:
        """A string point (serial number, firmware version): ASCII, two characters per register."""
        return decode.decode_string(words, self.order)

    def raw(self, value: float) -> list[int]:
        """Registers that make the point read ``value`` (the inverse of :meth:`value`)."""
        if self.type == "bit":
            return [1 if value else 0]
        return decode.encode((value - self.offset) / self.scale, self.type, self.order)


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    points: tuple[Point, ...]
    source: str = ""
    description: str = ""
    path: Path | None = field(default=None, compare=False)
    groups: dict[str, float] = field(default_factory=dict)  # poll group -> default interval, seconds

    def point(self, name: str) -> Point:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(name)


_POINT_KEYS = {f for f in Point.__dataclass_fields__}


def load(ref: str | Path) -> Profile:
    """Load a profile by bundled name (``signalcraft-sim-compressor``) or by file path."""
    path = Path(ref)
    if not path.suffix:
        path = PROFILES_DIR / f"{ref}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        bundled = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.toml")))
        raise ConfigError("profile", f"no profile {str(ref)!r} (bundled: {bundled})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("profile", f"{path}: not valid TOML: {exc}") from None
    return parse(data, path)


def parse(data: dict, path: Path | None = None) -> Profile:
    where = str(path) if path else "profile"
    unknown = set(data) - {"profile", "groups", "points"}
    if unknown:
        raise ConfigError("profile", f"unknown table(s) {', '.join(sorted(unknown))}", where)
    head = data.get("profile", {})
    name = head.get("name") or (path.stem if path else "")
    if not name:
        raise ConfigError("profile.name", "a profile needs a name", where)
    raw_points = data.get("points")
    if not isinstance(raw_points, list) or not raw_points:
        raise ConfigError(f"{name}.points", "a profile needs at least one [[points]] entry", where)
    groups = _groups(data.get("groups", {}), name, where)
    points, seen = [], set()
    for i, raw in enumerate(raw_points):
        label = f"{name}.points[{i}]" + (f" ({raw.get('name')})" if isinstance(raw, dict) else "")
        point = _point(raw, label, where)
        if point.name in seen:
            raise ConfigError(label, f"duplicate point name {point.name!r}", where)
        if point.group and point.group not in groups:
            raise ConfigError(label, f"group {point.group!r} is not declared under [groups]", where)
        seen.add(point.name)
        points.append(point)
    return Profile(name, tuple(points), head.get("source", ""), head.get("description", ""), path, groups)


def _groups(raw: object, name: str, where: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}.groups", "must be a table of group = \"interval\"", where)
    out = {}
    for group, text in raw.items():
        try:
            seconds = parse_duration(text).total_seconds()
        except ValueError as exc:
            raise ConfigError(f"{name}.groups.{group}", str(exc), where) from None
        if seconds <= 0:
            raise ConfigError(f"{name}.groups.{group}", "must be positive", where)
        out[group] = seconds
    return out


def _point(raw: object, label: str, where: str) -> Point:
    if not isinstance(raw, dict):
        raise ConfigError(label, "each point must be a table", where)
    unknown = set(raw) - _POINT_KEYS
    if unknown:
        raise ConfigError(label, f"unknown key(s) {', '.join(sorted(unknown))}", where)
    for key in ("name", "function", "address", "type"):
        if key not in raw:
            raise ConfigError(label, f"missing {key!r}", where)
    function, address, type_ = raw["function"], raw["address"], raw["type"]
    if function not in FUNCTIONS:
        raise ConfigError(label, f"function {function!r} is not 1, 2, 3 or 4", where)
    if not isinstance(address, int) or not 0 <= address <= 65535:
        raise ConfigError(label, f"address {address!r} is not 0..65535 (0-based protocol address)", where)
    bit_function = function in (1, 2)
    if bit_function != (type_ == "bit"):
        raise ConfigError(
            label, f"type {type_!r} does not fit function {function} ({FUNCTIONS[function]})", where
        )
    if type_ not in decode.TYPES and type_ not in ("bit", "string"):
        raise ConfigError(label, f"unknown type {type_!r}", where)
    try:
        order = decode.canonical_order(raw.get("order", "ABCD"))
    except ValueError as exc:
        raise ConfigError(label, str(exc), where) from None
    for key in ("scale", "offset", "deadband"):
        if not isinstance(raw.get(key, 0.0), int | float) or isinstance(raw.get(key), bool):
            raise ConfigError(label, f"{key} {raw[key]!r} is not a number", where)
    scale = float(raw.get("scale", 1.0))
    if scale == 0:
        raise ConfigError(label, "scale must not be 0", where)
    length = raw.get("length", 0)
    if type_ == "string" and not (isinstance(length, int) and 0 < length <= 125):
        raise ConfigError(label, "a string point needs length = its registers (1..125)", where)
    deadband = raw.get("deadband", 0.0)
    if deadband < 0:
        raise ConfigError(label, f"deadband {deadband!r} must be a number >= 0", where)
    width = 1 if type_ == "bit" else length if type_ == "string" else decode.registers_for(type_)
    if address + width > 65536:
        raise ConfigError(label, f"address {address} + {width} registers runs past 65535", where)
    return Point(
        name=str(raw["name"]),
        function=function,
        address=address,
        type=type_,
        order=order,
        scale=scale,
        offset=float(raw.get("offset", 0.0)),
        unit=str(raw.get("unit", "")),
        length=length,
        deadband=float(deadband),
        group=str(raw.get("group", "")),
    )
