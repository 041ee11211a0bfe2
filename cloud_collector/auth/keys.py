"""API keys: ``sc_<prefix>_<secret>``, 256 bits of randomness, stored as SHA-256 only.

A slow password hash buys nothing for a random 256-bit secret (there is no dictionary to try) and would
cost tens of milliseconds on every API call; SHA-256 makes a stolen table useless just the same.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str  # shown once, never stored
    prefix: str
    key_hash: str


def generate() -> NewKey:
    prefix = secrets.token_hex(4)
    key = f"sc_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(key, prefix, digest(key))


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(text: str) -> bool:
    return text.startswith("sc_") and text.count("_") >= 2
