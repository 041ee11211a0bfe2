"""A throw-away certificate authority for the TLS tests (cryptography), and a production-like broker."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signalcraft import embedded


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_ca(
    folder: Path, cn: str = "SignalCraft Test CA"
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(folder / "ca", key, cert)
    return key, cert


def issue(folder: Path, name: str, ca: tuple, cn: str, server: bool) -> None:
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    _write(folder / name, key, builder.sign(ca_key, hashes.SHA256()))


@dataclass
class SecureBroker:
    port: int
    certs: Path
    proc: subprocess.Popen

    def stop(self) -> None:
        embedded.terminate(self.proc)


def start_secure_broker(workdir: Path, users: dict[str, str]) -> SecureBroker:
    """mosquitto with deploy/mosquitto/production.conf and the ACL, on a free port, with fresh certs."""
    certs = workdir / "certs"
    certs.mkdir(parents=True)
    ca = make_ca(certs)
    issue(certs, "server", ca, "localhost", server=True)
    passwd = workdir / "passwd"
    passwd.touch()
    for user, password in users.items():
        subprocess.run(
            [shutil.which("mosquitto_passwd") or "mosquitto_passwd", "-b", str(passwd), user, password],
            check=True,
            capture_output=True,
        )
    deploy = embedded.deploy_dir() / "mosquitto"
    port = embedded.free_port()
    conf = (deploy / "production.conf").read_text()
    conf = (
        conf.replace("listener 8883", f"listener {port} 127.0.0.1")
        .replace("/etc/mosquitto/certs/", f"{certs}/")
        .replace("/etc/mosquitto/passwd", str(passwd))
        .replace("/etc/mosquitto/signalcraft.acl", str(deploy / "signalcraft.acl"))
        .replace("/var/lib/mosquitto/", f"{workdir}/")
    )
    conf += "\n" + (deploy / "signalcraft.conf").read_text() + "\nlog_dest stderr\n"
    if os.geteuid() == 0:
        conf += "user root\n"  # else mosquitto drops to its own user and cannot read our files
    (workdir / "mosquitto.conf").write_text(conf)
    with open(workdir / "mosquitto.log", "ab") as log:
        proc = subprocess.Popen(
            [shutil.which("mosquitto") or "mosquitto", "-c", str(workdir / "mosquitto.conf")],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    embedded.wait_for_port("127.0.0.1", port, proc=proc)
    return SecureBroker(port, certs, proc)
