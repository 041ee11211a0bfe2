"""Serial ports: what is plugged in (with USB ids), and whether a port can be opened, and by whom.

The service runs as its own user with ``SupplementaryGroups=dialout`` (systemd/signalcraft-agent.service),
so a device must belong to the ``dialout`` group (udev does that for ttyUSB*, ttyACM*, ttyAMA*); a
technician at the shell needs to be in that group too, or use sudo.
"""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path
from typing import Any

from serial.tools import list_ports

from edge_agent.diagnose import Check, fail, ok, warn

SERVICE_GROUP = "dialout"
BY_ID = Path("/dev/serial/by-id")


def list_serial() -> list[dict[str, Any]]:
    """Every serial port the kernel knows, with its USB identity and stable /dev/serial/by-id name."""
    by_id: dict[str, str] = {}
    if BY_ID.is_dir():
        for link in sorted(BY_ID.iterdir()):
            by_id[os.path.realpath(link)] = str(link)
    ports = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        ports.append(
            {
                "device": p.device,
                "by_id": by_id.get(os.path.realpath(p.device), ""),
                "description": p.description if p.description != "n/a" else "",
                "usb": f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else "",
                "manufacturer": p.manufacturer or "",
                "product": p.product or "",
                "serial_number": p.serial_number or "",
                "location": p.location or "",
                "access": access(p.device).status,
            }
        )
    return ports


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def access(path: str) -> Check:
    """Can this user open ``path`` read-write, and could the service? The fix names the group."""
    name = f"port {path}"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return fail(
            name,
            f"{path} does not exist",
            "the USB adapter is unplugged, or its name changed after a reboot or a replug",
            "plug it in; `signalcraft-agent diag ports` lists what is there; use the stable "
            "/dev/serial/by-id/… name in the config",
        )
    except PermissionError:
        return fail(name, f"cannot look at {path}: permission denied", fix="run as root or the agent's user")
    if not stat.S_ISCHR(st.st_mode):
        return fail(name, f"{path} is not a serial device", fix="point the config at the /dev/tty… device")
    group = _group_name(st.st_gid)
    world_rw = st.st_mode & 0o006 == 0o006
    service_ok = world_rw or (group == SERVICE_GROUP and st.st_mode & 0o060 == 0o060)
    if not os.access(path, os.R_OK | os.W_OK):
        user_groups = {_group_name(g) for g in os.getgroups()}
        if group in user_groups:
            cause = f"you were added to group {group!r} but this login session predates it"
            fix = "log out and in again (or `newgrp " + group + "`)"
        else:
            cause = (
                f"{path} belongs to group {group!r} (mode {stat.filemode(st.st_mode)}) and you are not in it"
            )
            fix = f"sudo usermod -aG {group} $USER, then log in again (or run with sudo)"
        return fail(name, f"permission denied on {path}", cause, fix)
    if not service_ok:
        return warn(
            name,
            f"{path} is group {group!r}, mode {stat.filemode(st.st_mode)}: the service (group "
            f"{SERVICE_GROUP!r}) cannot open it",
            "the udev rule for this adapter does not give it to the dialout group",
            f'add a udev rule: SUBSYSTEM=="tty", KERNEL=="{Path(path).name}", GROUP="{SERVICE_GROUP}", '
            'MODE="0660"',
        )
    return ok(name, f"{path} can be opened (group {group}, mode {stat.filemode(st.st_mode)})")
