"""Comm loss: a silent host leaves the device safe, and only arming brings it back.

A motor device with a 1.0 s comm-loss timeout on a timed null-modem line. The
device logs the trip with its own elapsed time; the host checks the outputs
through the registers (feedback points show what is driven).
"""

import re
import time

import pytest
from pymodbus.client import ModbusSerialClient

from controller import registers
from firmware import regmap
from hil_tests.devices import DeviceProcess
from hil_tests.vline import VirtualLine

M = registers.point_map("motor")
TIMEOUT_S = 1.0


@pytest.fixture
def motor():
    with VirtualLine(2) as line, \
            DeviceProcess("motor", 9, line.ports[1], extra=["--comm-loss-s", str(TIMEOUT_S)]) as dev:
        c = ModbusSerialClient(line.ports[0], baudrate=115200, timeout=0.5, retries=1)
        assert c.connect()
        yield c, dev
        c.close()


def rd(c, name):
    p = M[name]
    if p.table == "discrete":
        return c.read_discrete_inputs(p.address, count=1, device_id=9).bits[0]
    fn = c.read_input_registers if p.table == "input" else c.read_holding_registers
    return p.decode(fn(p.address, count=p.words, device_id=9).registers)


def wr(c, name, value):
    p = M[name]
    if p.table == "coil":
        assert not c.write_coil(p.address, bool(value), device_id=9).isError()
    else:
        assert not c.write_registers(p.address, p.encode(value), device_id=9).isError()


def settle(c, name, want, timeout_s=3.0):
    """Poll until the output has ramped to want (the device ramps at 100 %/s here)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = rd(c, name)
        if got == pytest.approx(want):
            return got
    return got


def fast_ramps(c):
    wr(c, "ramp_up_pct_s", 100)
    wr(c, "ramp_down_pct_s", 100)


def test_outputs_reach_safe_state_within_timeout_and_stay_until_armed(motor):
    c, dev = motor
    fast_ramps(c)
    # Disarmed at boot: safe values drive the outputs whatever is commanded.
    wr(c, "speed_ref_pct", 80)
    wr(c, "run_cmd", 0)
    assert rd(c, "speed_actual_pct") == pytest.approx(50.0)  # speed_safe_pct default
    assert rd(c, "running") is False                        # run_safe default 0: no start at power-up
    wr(c, "run_safe", 1)  # a train found running: its safe state keeps it running
    assert rd(c, "running") is True
    wr(c, "arm", 1)
    assert settle(c, "speed_actual_pct", 80.0) == pytest.approx(80.0)
    assert rd(c, "running") is False
    assert int(rd(c, "status")) & regmap.ST_ARMED
    t_last = time.monotonic()
    line = dev.wait_line("comm loss", timeout_s=TIMEOUT_S + 2.0)
    t_trip = time.monotonic() - t_last
    assert line, "no comm-loss trip within %.1f s" % (TIMEOUT_S + 2.0)
    device_ms = int(re.search(r"no frame for (\d+) ms", line).group(1))
    # Supervisor ticks every 50 ms: the trip lands within one tick of the timeout.
    assert TIMEOUT_S * 1000 < device_ms <= TIMEOUT_S * 1000 + 60
    assert t_trip < TIMEOUT_S + 0.3
    status = int(rd(c, "status"))
    assert status & regmap.ST_SAFE_STATE and status & regmap.ST_COMM_LOST
    assert not status & regmap.ST_ARMED
    assert rd(c, "arm") == 0
    assert rd(c, "comm_loss_trips") == 1
    assert settle(c, "speed_actual_pct", 50.0) == pytest.approx(50.0)
    assert rd(c, "running") is True
    # Traffic and new commands do not re-arm.
    wr(c, "speed_ref_pct", 30)
    for _ in range(5):
        rd(c, "status")
    assert rd(c, "speed_actual_pct") == pytest.approx(50.0)
    # Only an explicit arm does; the outputs take the latest commands.
    wr(c, "arm", 1)
    assert settle(c, "speed_actual_pct", 30.0) == pytest.approx(30.0)
    assert rd(c, "running") is False
    assert not int(rd(c, "status")) & regmap.ST_COMM_LOST


def test_hold_mask_keeps_last_value(motor):
    c, dev = motor
    fast_ramps(c)
    wr(c, "safe_hold_mask", 1)  # output 0 (speed) holds, output 1 (run) goes safe
    wr(c, "run_safe", 0)
    wr(c, "speed_ref_pct", 72.5)
    wr(c, "run_cmd", 1)
    wr(c, "arm", 1)
    assert settle(c, "speed_actual_pct", 72.5) == pytest.approx(72.5)
    assert dev.wait_line("comm loss", timeout_s=TIMEOUT_S + 2.0)
    assert rd(c, "speed_actual_pct") == pytest.approx(72.5)
    assert rd(c, "running") is False
    assert rd(c, "arm") == 0
