"""The TLS step of ``diag mqtt``: which certificate is wrong, and why, from OpenSSL's verify code.

When verification fails we look at the broker's certificate anyway (a second handshake that does not
verify, only to read it), so the report can say "issued by X, but mqtt.ca_file holds Y" instead of
"certificate verify failed".
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import tempfile
import time
from typing import Any

from edge_agent.diagnose import Check, fail, ok, warn

# OpenSSL X509_V_ERR_* codes we explain.
_UNKNOWN_ISSUER = {2, 18, 19, 20, 21}  # no issuer cert / self-signed / unable to get local issuer …
_EXPIRED, _NOT_YET_VALID = 10, 9
_NAME_MISMATCH = {62, 63, 64}  # host name, e-mail, IP address


_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C"}


def _name(rdns: Any) -> str:
    """``CN=broker.example, O=Shop`` from the tuple form the ssl module returns."""
    return ", ".join(f"{_SHORT.get(k, k)}={v}" for rdn in rdns or () for k, v in rdn) or "?"


def _peer_cert(host: str, port: int, timeout: float) -> dict[str, Any]:
    """The broker's certificate, read without verifying it (only for the report)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout) as raw, ctx.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return {}
    if not der:
        return {}
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
        return ssl._ssl._test_decode_cert(path)  # type: ignore[attr-defined]  # CPython's own decoder
    except (AttributeError, ssl.SSLError, ValueError):
        return {}
    finally:
        os.unlink(path)


def _context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext | Check:
    try:
        ctx = ssl.create_default_context(cafile=ca_file or None)
    except FileNotFoundError:
        return fail(
            "tls", f"mqtt.ca_file {ca_file} does not exist", fix="copy the fleet CA certificate there"
        )
    except PermissionError:
        return fail(
            "tls",
            f"cannot read mqtt.ca_file {ca_file}: permission denied",
            fix="make it readable by the agent's group: chgrp signalcraft FILE; chmod 0640 FILE",
        )
    except ssl.SSLError as exc:
        return fail(
            "tls",
            f"mqtt.ca_file {ca_file} is not a PEM certificate ({exc.reason})",
            fix="use the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)",
        )
    if cert_file:
        try:
            ctx.load_cert_chain(cert_file, key_file or None)
        except (OSError, ssl.SSLError) as exc:
            return fail(
                "tls",
                f"cannot load our client certificate mqtt.cert_file {cert_file} / mqtt.key_file "
                f"{key_file or '(in the same file)'}: {getattr(exc, 'reason', None) or exc}",
                "missing or unreadable file, or a key that does not belong to the certificate",
                "install the device's certificate and its own key; both readable by the agent's group",
            )
    return ctx


def tls_check(host: str, port: int, ca_file: str, cert_file: str, key_file: str, timeout: float) -> Check:
    ctx = _context(ca_file, cert_file, key_file)
    if isinstance(ctx, Check):
        return ctx
    trust = f"mqtt.ca_file {ca_file}" if ca_file else "the system's CA store (mqtt.ca_file is empty)"
    try:
        with (
            socket.create_connection((host, port), timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            cert = tls.getpeercert() or {}
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        return _verify_failed(exc, host, port, trust, timeout)
    except ssl.SSLError as exc:
        return _handshake_failed(exc, host, port)
    except (ConnectionResetError, BrokenPipeError) as exc:
        # mosquitto's plain listener hangs up on a TLS hello.
        return fail(
            "tls",
            f"{host}:{port} hung up on the TLS handshake ({exc.strerror or exc})",
            "the port speaks plain MQTT, not TLS (or a proxy in between refuses TLS)",
            "use mqtts:// with the broker's TLS port (8883), or mqtt:// on a plain port",
        )
    except OSError as exc:
        return fail("tls", f"TLS handshake with {host}:{port} failed: {exc}", fix="see the tcp step")
    issuer, subject = _name(cert.get("issuer")), _name(cert.get("subject"))
    left = ssl.cert_time_to_seconds(cert["notAfter"]) - time.time() if "notAfter" in cert else None
    detail = f"{version}, broker certificate {subject} issued by {issuer}, trusted via {trust}"
    if left is not None and left < 30 * 86400:
        return warn(
            "tls",
            f"{detail}; it expires in {left / 86400:.0f} days ({cert['notAfter']})",
            fix="renew the broker's certificate before it expires",
        )
    return ok("tls", detail)


def _verify_failed(
    exc: ssl.SSLCertVerificationError, host: str, port: int, trust: str, timeout: float
) -> Check:
    peer = _peer_cert(host, port, timeout)
    issuer, subject = _name(peer.get("issuer")), _name(peer.get("subject"))
    code = exc.verify_code
    detail = (
        f"the broker's certificate ({subject}, issued by {issuer}) failed verification: {exc.verify_message}"
    )
    if code in _UNKNOWN_ISSUER:
        return fail(
            "tls",
            detail,
            f"it is not signed by a CA in {trust}",
            "install the CA that issued the broker's certificate as mqtt.ca_file (ask the office for the "
            "fleet CA), or check that mqtt.url names the right broker",
        )
    if code == _EXPIRED:
        return fail(
            "tls",
            f"{detail} (valid until {peer.get('notAfter', '?')})",
            "the broker's certificate expired, or this device's clock is ahead",
            "renew the broker certificate; check `timedatectl` on this device",
        )
    if code == _NOT_YET_VALID:
        return fail(
            "tls",
            f"{detail} (valid from {peer.get('notBefore', '?')})",
            "this device's clock is behind (no NTP since boot?)",
            "`timedatectl` should say 'System clock synchronized: yes'; fix NTP",
        )
    if code in _NAME_MISMATCH:
        names = ", ".join(v for _, v in peer.get("subjectAltName", ())) or subject
        return fail(
            "tls",
            detail,
            f"the certificate is for {names}, not {host!r}",
            "use one of the certificate's names in mqtt.url",
        )
    return fail("tls", detail, fix="check the broker certificate chain and mqtt.ca_file")


def _handshake_failed(exc: ssl.SSLError, host: str, port: int) -> Check:
    reason = (exc.reason or "").upper()
    detail = f"TLS handshake with {host}:{port} failed: {exc.reason or exc}"
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason or "EOF" in reason:
        return fail(
            "tls",
            detail,
            "the port speaks plain MQTT, not TLS",
            "use mqtts:// with the broker's TLS port (8883), or mqtt:// on a plain port",
        )
    if "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason:
        return fail(
            "tls",
            detail,
            "the broker requires a client certificate",
            "set mqtt.cert_file and mqtt.key_file to this device's certificate",
        )
    if "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason:
        return fail(
            "tls",
            detail,
            "the broker does not trust our client certificate (mqtt.cert_file)",
            "use a device certificate issued by the broker's CA",
        )
    with contextlib.suppress(AttributeError):
        detail += f" [{exc.library}]"
    return fail("tls", detail, fix="compare TLS versions and ciphers with the broker's listener")
