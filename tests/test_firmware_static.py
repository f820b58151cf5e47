"""Every firmware module cross-compiles for the boards and type-checks against
the MicroPython stubs."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controller import mpvm

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("march", ["armv6m", "xtensawin", "armv7emsp"])
def test_cross_compiles(march, tmp_path):
    files = mpvm.compile_firmware(tmp_path, march)
    names = {f.name for f in files}
    assert {"main.py", "modbus_rtu.mpy", "regmap.mpy", "regbank.mpy"} <= names
    assert all(f.stat().st_size > 0 for f in files)


def test_compile_error_is_reported(tmp_path, monkeypatch):
    bad = tmp_path / "fw"
    shutil.copytree(mpvm.FIRMWARE_DIR, bad)
    (bad / "broken.py").write_text("def f(:\n")
    monkeypatch.setattr(mpvm, "FIRMWARE_DIR", bad)
    with pytest.raises(RuntimeError, match="broken.py"):
        mpvm.compile_firmware(tmp_path / "out", "armv6m")


BOARDS = {
    "rp2": ["hal/rp2.py", "hal/rs485.py", "hal/adc_rp2.py"],
    "esp32": ["hal/esp32.py", "hal/rs485.py", "hal/adc_esp32.py"],
    "stm32": ["hal/stm32.py", "hal/rs485.py", "hal/adc_stm32.py"],
}


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_type_checks_against_stubs(board):
    stubs = ROOT / "typings" / board
    if not stubs.exists():
        pytest.fail("stubs missing: run `pip install micropython-%s-stubs --target typings/%s "
                    "--no-user` (the README's test command does)" % (board, board))
    common = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "firmware").glob("*.py"))
              if p.name not in ("regmap_text.py", "__init__.py")]
    common += ["firmware/profiles/%s.py" % p for p in ("motor", "compressor", "scr", "fgd")]
    files = common + ["firmware/" + f for f in BOARDS[board]]
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file",
                        "tools/mypy-%s.ini" % board] + files,
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
