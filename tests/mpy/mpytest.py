"""Helpers shared by the MicroPython test scripts in this folder."""

import sys

from modbus_rtu import crc16

_fails = [0]


def check(name, got, want):
    """Exact comparison; prints one line per check."""
    if got != want:
        _fails[0] += 1
        print("FAIL", name, got, want)
    else:
        print("ok", name)


def frame(b):
    """b + its Modbus CRC (low byte first)."""
    b = bytearray(b)
    c = crc16(b, len(b))
    b.append(c & 0xFF)
    b.append(c >> 8)
    return b


def finish():
    """Exit 1 with a FAILED line if any check failed, else print ALL OK."""
    if _fails[0]:
        print("FAILED", _fails[0])
        sys.exit(1)
    print("ALL OK")
