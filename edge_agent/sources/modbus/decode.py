"""Where register words become numbers (and back, for the simulator).

Modbus registers are 16-bit big-endian words. Multi-word values are spelled with the byte-order letters
users know from device manuals, where ``A`` is the most significant byte of the value:

- ``ABCD``: big-endian, high word first (Modbus' own convention; "MSW-BE")
- ``CDAB``: word-swapped, low word first (common on energy meters; "MSW-LE")
- ``BADC``: bytes swapped within each word, high word first
- ``DCBA``: fully little-endian

For 64-bit values the letters extend the same way (``ABCDEFGH`` ...); we accept the four-letter
names and apply the same rule to every pair of words.
"""

from __future__ import annotations

import struct

TYPES: dict[str, tuple[int, str]] = {
    # type name -> (registers, struct format of the big-endian value)
    "int16": (1, ">h"),
    "uint16": (1, ">H"),
    "int32": (2, ">i"),
    "uint32": (2, ">I"),
    "int64": (4, ">q"),
    "uint64": (4, ">Q"),
    "float32": (2, ">f"),
    "float64": (4, ">d"),
}
ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")
ORDER_ALIASES = {"MSW-BE": "ABCD", "MSW-LE": "CDAB", "BIG": "ABCD", "LITTLE": "DCBA"}


def canonical_order(order: str) -> str:
    """Accept the four names and the explicit aliases; anything else is an error, never a guess."""
    upper = order.upper()
    upper = ORDER_ALIASES.get(upper, upper)
    if upper not in ORDERS:
        raise ValueError(f"unknown byte order {order!r} (use one of {', '.join(ORDERS)})")
    return upper


def registers_for(type_name: str) -> int:
    return TYPES[type_name][0]


def _reorder(raw: bytes, order: str) -> bytes:
    """Turn wire bytes in ``order`` into big-endian bytes (the operation is its own inverse)."""
    if order in ("BADC", "DCBA"):
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    if order in ("CDAB", "DCBA"):
        words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
        raw = b"".join(reversed(words))
    return raw


def decode(words: list[int] | tuple[int, ...], type_name: str, order: str = "ABCD") -> float | int:
    """Decode the registers of one value. ``words`` are the 16-bit words as they came off the wire."""
    count, fmt = TYPES[type_name]
    if len(words) != count:
        raise ValueError(f"{type_name} needs {count} registers, got {len(words)}")
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    if count == 1 and order in ("BADC", "DCBA"):
        raw = raw[::-1]
    elif count > 1:
        raw = _reorder(raw, order)
    return struct.unpack(fmt, raw)[0]


def decode_string(words: list[int] | tuple[int, ...], order: str = "ABCD") -> str:
    """ASCII text, first character in the high byte of the first register (``BADC``/``DCBA``: low byte);
    trailing NULs and spaces are dropped."""
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    if order in ("BADC", "DCBA"):
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return raw.split(b"\0", 1)[0].decode("ascii", "replace").rstrip()


def encode(value: float | int, type_name: str, order: str = "ABCD") -> list[int]:
    """Encode one value into registers in ``order`` (what a slave, or our simulator, puts on the wire)."""
    count, fmt = TYPES[type_name]
    if fmt[-1] in "hHiIqQ":
        value = round(value)
    raw = struct.pack(fmt, value)
    if count == 1 and order in ("BADC", "DCBA"):
        raw = raw[::-1]
    elif count > 1:
        raw = _reorder(raw, order)
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
