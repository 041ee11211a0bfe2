"""``diag read``, ``diag scan`` and ``diag ports`` on a simulated RS-485 line, and what they say when it
fails: unplugged adapter, wrong baud rate, wrong slave id, a register the device lacks, no permission."""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_agent.cli import app
from simulator.rtu_bus import LineFaults, SimBus

runner = CliRunner()
BAUD = 9600  # not the CLI's default, so "wrong baud" is what a technician who forgot --baud gets


@pytest.fixture
def line(tmp_path: Path) -> Iterator[SimBus]:
    banks = {
        1: {"holding": {0: [0x4148, 0x0000, 7]}},  # 12.5 as float32, then 7
        2: {"input": {10: [0xFFFE]}},  # -2 as int16
    }
    with SimBus(banks, baud=BAUD, check_baud=True, link=tmp_path / "ttyUSB0", faults=LineFaults()) as sim:
        yield sim


def read(port: str, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["diag", "read", "--port", port, *args, "--json"])
    return result.exit_code, json.loads(result.output)


def test_read_uses_the_agents_framing_and_decodes(line: SimBus) -> None:
    code, out = read(line.port, "--baud", str(BAUD), "--slave", "1", "--register", "0", "--type", "float32")
    assert code == 0 and out["value"] == 12.5 and out["registers"] == [0x4148, 0]
    assert out["frames"][0]["tx"] == "01 03 00 00 00 02 C4 0B"  # the RTU frame, CRC included
    code, out = read(
        line.port,
        "--baud",
        str(BAUD),
        "--slave",
        "2",
        "--register",
        "10",
        "--function",
        "4",
        "--type",
        "int16",
    )
    assert code == 0 and out["value"] == -2


def test_read_trace_prints_the_frames(line: SimBus) -> None:
    result = runner.invoke(
        app,
        [
            "diag",
            "read",
            "--port",
            line.port,
            "--baud",
            str(BAUD),
            "--slave",
            "1",
            "--register",
            "2",
            "--trace",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "TX 01 03 00 02 00 01" in result.output and "ok" in result.output
    assert result.output.strip().endswith("(registers 0x0007, uint16 ABCD)")


def test_wrong_baud_rate_is_no_answer_and_points_at_scan(line: SimBus) -> None:
    code, out = read(line.port, "--slave", "1", "--register", "0", "--timeout", "0.1")  # default 19200
    assert code == 1 and out["error"] == "DeviceTimeout"
    assert "baud rate" in out["detail"] and "parity" in out["detail"]
    assert "diag scan" in out["fix"] and "19200 baud" in out["fix"]


def test_wrong_slave_id_is_no_answer(line: SimBus) -> None:
    code, out = read(line.port, "--baud", str(BAUD), "--slave", "7", "--register", "0", "--timeout", "0.1")
    assert code == 1 and out["error"] == "DeviceTimeout"
    assert "slave id" in out["detail"] and "wiring" in out["detail"]
    assert out["frames"][0]["rx"] == ""  # nothing came back


def test_missing_register_is_an_illegal_address(line: SimBus) -> None:
    code, out = read(line.port, "--baud", str(BAUD), "--slave", "1", "--register", "500")
    assert code == 1 and out["error"] == "IllegalAddress"
    assert "[code:2]" in out["detail"] and "register address" in out["fix"]


def test_unplugged_adapter(line: SimBus) -> None:
    port = line.port
    line.unplug()
    code, out = read(port, "--baud", str(BAUD), "--slave", "1", "--register", "0")
    assert code == 1 and out["error"] == "PortError"
    assert "is the USB adapter plugged in?" in out["detail"] and "diag ports" in out["fix"]
    text = runner.invoke(app, ["diag", "read", "--port", port, "--slave", "1", "--register", "0"])
    assert text.exit_code == 1 and "error: " in text.output and "next: " in text.output


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to lose file access"
)
def test_permission_denied_names_the_dialout_group(line: SimBus) -> None:
    # The port as udev makes it (root-owned elsewhere: here nobody:dialout, 0660), opened by a process
    # outside the dialout group without the capability that lets root ignore file modes.
    port = os.path.realpath(line.port)
    os.chown(port, 65534, grp.getgrnam("dialout").gr_gid)
    os.chmod(port, 0o660)
    cli = "from edge_agent.cli import app; app()"
    args = ["diag", "read", "--port", line.port, "--slave", "1", "--register", "0", "--json"]
    result = subprocess.run(
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", sys.executable, "-c", cli, *args],
        capture_output=True,
        text=True,
    )
    out = json.loads(result.stdout)
    assert result.returncode == 1 and out["error"] == "PortError", result.stderr
    assert "permission denied" in out["detail"] and "'dialout' group" in out["detail"]


def test_scan_finds_slaves_and_baud_rate(line: SimBus) -> None:
    result = runner.invoke(
        app,
        [
            "diag",
            "scan",
            "--port",
            line.port,
            "--baud",
            "19200",
            "--baud",
            str(BAUD),
            "--baud",
            "38400",
            "--slaves",
            "1-4",
            "--timeout",
            "0.05",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [(f["slave"], f["baud"]) for f in out["found"]] == [(1, BAUD), (2, BAUD)]
    assert out["found"][1]["answer"].startswith("exception 2")  # slave 2 has no holding register 0
    assert out["bauds_tried"] == [19200, BAUD]  # stopped at the first speed that answered


def test_scan_with_nothing_there_says_what_to_check(line: SimBus) -> None:
    result = runner.invoke(
        app, ["diag", "scan", "--port", line.port, "--baud", "19200", "--slaves", "1-3", "--timeout", "0.05"]
    )
    assert result.exit_code == 1
    assert "no slave answered at 19200 baud" in result.output and "termination" in result.output


def test_scan_of_a_missing_port(tmp_path: Path) -> None:
    result = runner.invoke(app, ["diag", "scan", "--port", str(tmp_path / "ttyUSB9"), "--json"])
    assert result.exit_code == 1
    assert "serial port not found" in json.loads(result.output)["error"]


def test_ports_checks_the_configured_ones(line: SimBus, tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nsite = "s"\ndevice = "d"\nstate_dir = "{tmp_path}"\n[mqtt]\nurl = "mqtt://127.0.0.1"\n'
        f'[[modbus]]\nname = "a"\nport = "{line.port}"\nslave = 1\nprofile = "signalcraft-sim-compressor"\n'
        f'[[modbus]]\nname = "b"\nport = "{tmp_path}/ttyUSB7"\nslave = 1\nprofile = "eastron-sdm120"\n'
    )
    result = runner.invoke(app, ["diag", "ports", "--config", str(config), "--json"])
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert isinstance(out["ports"], list)
    present, missing = out["configured"]
    assert present["status"] in ("ok", "warn")  # a pty is not in group dialout: the service could not
    assert missing["status"] == "fail" and "/dev/serial/by-id" in missing["fix"]
