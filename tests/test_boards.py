"""Board files (boards/*.json): each builds into a flashable folder, and a
wrong pin, point, range or calibration is refused with the key that is wrong."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "firmware"))
import fwconfig  # noqa: E402  (the firmware's own validator, importable by CPython)

BOARDS = sorted((ROOT / "boards").glob("*.json"))


def load(name):
    cfg = json.loads((ROOT / "boards" / name).read_text())
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def test_every_profile_has_a_board_file():
    profiles = {json.loads(b.read_text())["profile"] for b in BOARDS}
    assert profiles == {"motor", "compressor", "scr", "fgd"}
    hals = {json.loads(b.read_text())["hal"] for b in BOARDS}
    assert hals == {"rp2", "esp32", "stm32"}


@pytest.mark.parametrize("board", BOARDS, ids=lambda p: p.stem)
def test_board_file_builds(board, tmp_path):
    out = tmp_path / board.stem
    r = subprocess.run([sys.executable, "-m", "controller.cli", "firmware", "build",
                        "--board", str(board), "--unit", "7", "--out", str(out)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((out / "config.json").read_text())
    want = load(board.name)
    assert cfg["unit"] == 7  # the option wins over the file
    for k in ("profile", "hal", "uart", "ain", "outputs", "settings", "adc_pins", "cal_i"):
        assert cfg.get(k) == want.get(k), k
    assert "_about" not in cfg
    assert (out / "boardio.mpy").exists() and (out / "main.py").exists()
    assert (out / "hal" / ("adc_%s.mpy" % cfg["hal"])).exists()


def _set(path, value):
    def f(cfg):
        *head, last = path
        d = cfg
        for k in head:
            d = d[k]
        if value is KeyError:
            del d[last]
        else:
            d[last] = value
    return f


@pytest.mark.parametrize("board, change, msg", [
    ("esp32-scr.json", _set(("ain", 0, "point"), "nox_typo"), "ain[0].point"),
    ("esp32-scr.json", _set(("ain", 1, "pin"), 32), "pin 32 is already used"),
    ("esp32-scr.json", _set(("ain", 2, "hi"), 0), "lo and hi are both 0"),
    ("esp32-scr.json", _set(("ain", 3, "status"), ["nox_in_mg_nm3"]), "not a discrete input"),
    ("esp32-scr.json", _set(("ain", 0, "gain"), 2), "unknown key 'gain'"),
    ("esp32-scr.json", _set(("din", "dosing_active"), 5), "set by the device"),
    ("esp32-scr.json", _set(("din", "dosing_blocked"), 5), "set by the device"),
    ("esp32-scr.json", _set(("din", "armed"), 5), "not a field discrete input"),
    ("esp32-scr.json", _set(("outputs", "nh3_flow_kgh"), 5), "not a command of scr"),
    ("esp32-scr.json", _set(("settings", "min_catalyst_temp_c"), 100), "outside 150..400"),
    ("esp32-scr.json", _set(("settings", "valve_cmd_pct"), 50), None),  # a command, allowed
    ("esp32-scr.json", _set(("settings", "arm"), 1), "not a writable setting"),
    ("esp32-scr.json", _set(("settings", "nox_out_mg_nm3"), 1), "not a writable setting"),
    ("esp32-motor.json", _set(("adc_pins",), [35, None, None, 32, 33, 34]), "lower ADC input"),
    ("esp32-motor.json", _set(("adc_pins",), [32, 33]), "6 entries"),
    ("esp32-motor.json", _set(("cal_i",), KeyError), "cal_i"),
    ("esp32-motor.json", _set(("cal_v",), [0.2, 0.2, -1]), "cal_v"),
    ("esp32-motor.json", _set(("phase_deg",), [45, 0, 0]), "phase_deg"),
    ("esp32-motor.json", _set(("din", "running"), 5), "set by the device"),
    ("esp32-motor.json", _set(("outputs", "run_cmd"), 32), "already used"),
    ("pico-motor.json", lambda c: c.update(hal="sim", port="/dev/ttyUSB0", uart=None),
     "pins exist on a board only"),
    ("pyboard-fgd.json", _set(("metering",), True), "no metering points"),
    ("pyboard-compressor.json", _set(("adc_burst",), True), "adc_burst"),
])
def test_bad_board_config_names_the_key(board, change, msg):
    cfg = copy.deepcopy(load(board))
    change(cfg)
    if msg is None:
        fwconfig.validate(cfg)
        return
    with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        fwconfig.validate(cfg)


def test_bad_board_file_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"profile": "scr", "hal": "esp32", ')
    r = subprocess.run([sys.executable, "-m", "controller.cli", "firmware", "build",
                        "--board", str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "not valid JSON" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "controller.cli", "firmware", "build",
                        "--board", str(ROOT / "boards" / "esp32-scr.json"), "--arch", "armv6m"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "does not match" in r.stderr
