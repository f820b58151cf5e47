"""Fixtures for the HIL bench: virtual lines and firmware devices, always torn down."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hil_tests.devices import DeviceProcess  # noqa: E402
from hil_tests.vline import VirtualLine  # noqa: E402


@pytest.fixture(scope="module")
def bus():
    """One timed 115200-baud line: master on port 0, scr unit 5 and motor unit 6."""
    with VirtualLine(3, baud=115200) as line:
        with DeviceProcess("scr", 5, line.ports[1]) as scr, \
                DeviceProcess("motor", 6, line.ports[2]) as motor:
            yield {"line": line, "master": line.ports[0], "scr": scr, "motor": motor}
