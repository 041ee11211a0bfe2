"""``mqtt://user:password@host:1883`` and ``mqtts://…`` (TLS) broker addresses, parsed once."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from common.errors import ConfigError


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never print the password
        user = f"{self.username}@" if self.username else ""
        return f"BrokerAddress({'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port})"

    @classmethod
    def parse(cls, url: str, setting: str = "mqtt.url") -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ConfigError(setting, f"scheme {parts.scheme!r} not supported (use mqtt:// or mqtts://)")
        if not parts.hostname:
            raise ConfigError(setting, f"{url!r} names no host")
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ConfigError(setting, f"{url!r} has an invalid port") from None
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )
