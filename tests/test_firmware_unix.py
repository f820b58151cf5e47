"""Firmware logic on the real MicroPython unix port (not CPython)."""

import os
import subprocess
from pathlib import Path

import pytest

from controller import mpvm

HERE = Path(__file__).resolve().parent


def run_mpy(script, heap="64K", timeout=60):
    build = mpvm.unix_build()
    env = dict(os.environ, MICROPYPATH="%s:.frozen" % build)
    return subprocess.run(mpvm.find_micropython() + ["-X", "heapsize=%s" % heap, str(script)],
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("script", ["test_rtu_logic.py", "test_supervisor_logic.py",
                                    "test_metering.py", "test_io_logic.py",
                                    "test_adcsrc.py", "test_boardio.py", "test_tickwrap.py", "test_rtu_framing.py", "test_persist.py", "test_powerup.py", "test_settings_lock.py"])
def test_firmware_logic_on_unix_port(script):
    # Heap for the test's own synthesis; the kernels run under heap_lock inside.
    r = run_mpy(HERE / "mpy" / script, heap="2M")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout
    assert r.stdout.strip().endswith("ALL OK")


@pytest.mark.parametrize("profile", ["motor", "compressor", "scr", "fgd"])
def test_whole_device_builds_in_64k_heap(profile, tmp_path):
    script = tmp_path / "boot.py"
    script.write_text(
        "import gc, micropython\n"
        "from device import Device\n"
        "class U:\n"
        "    port = None\n"
        "cfg = {'profile': %r, 'unit': 1, 'baud': 115200, 'comm_loss_timeout_s': None,\n"
        "       'model': '', 'hal': 'sim'}\n"
        "d = Device(cfg, U())\n"
        "gc.collect()\n"
        "print('free', gc.mem_free())\n" % profile)
    r = run_mpy(script)
    assert r.returncode == 0, r.stdout + r.stderr
    free = int(r.stdout.split()[-1])
    assert free > 4096, "less than 4 KB heap left after boot: %d" % free
