"""Device identity (43/14) with a long model string: refused at config time
with a clear message; a device built with one anyway answers 43/14 within its
buffer instead of dying (on the real MicroPython VM)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "firmware"))
import fwconfig  # noqa: E402

from tests.test_firmware_unix import run_mpy  # noqa: E402


def test_model_over_64_bytes_is_refused_with_the_key():
    ok = {"profile": "motor", "unit": 1, "port": "/dev/null", "model": "m" * 64}
    assert fwconfig.validate(ok)["model"] == "m" * 64
    with pytest.raises(ValueError, match="config model: at most 64 bytes"):
        fwconfig.validate(dict(ok, model="m" * 200))


def test_long_model_device_still_answers_identification(tmp_path):
    script = tmp_path / "ident.py"
    script.write_text(
        "import regbank\n"
        "from modbus_rtu import RtuServer, crc16\n"
        "bank = regbank.RegBank('motor')\n"
        "srv = RtuServer(bank, 1, 115200, ('GreenEdge', 'motor', '1.0.0', '', 'x', 'M' * 300, 'u'))\n"
        "req = bytearray(b'\\x01\\x2b\\x0e\\x02\\x00')\n"
        "c = crc16(req, len(req))\n"
        "req.append(c & 0xFF)\n"
        "req.append(c >> 8)\n"
        "for i in range(len(req)):\n"
        "    srv.rx[i] = req[i]\n"
        "n = srv.handle(len(req))\n"
        "print('reply', n, srv.tx[1], srv.tx[7])\n")
    r = run_mpy(script, heap="256K")
    assert r.returncode == 0, r.stdout + r.stderr
    words = r.stdout.split()
    n, fc, count = int(words[1]), int(words[2]), int(words[3])
    assert fc == 43 and count == 7 and 0 < n <= 260
