"""Comm loss: a host that stops writing its heartbeat leaves the device safe
(a silent host, or a live one whose loop died: polling alone does not count),
and only arming brings it back.

A motor device with a 1.0 s comm-loss timeout on a timed null-modem line. The
device logs the trip with its own elapsed time; the host checks the outputs
through the registers (feedback points show what is driven). The last tests run
the host service against the firmware: a loop that raises leaves its device
safe within its timeout while polling goes on; locked settings are unlocked
around the service's writes and relocked; a wrong key is reported.
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
    # The tests time the device's own supervisor (a trip within one 50 ms tick
    # of its timeout): a board owns its CPU, so the device runs under
    # SCHED_FIFO here, as in the fuzz test; on a loaded host it was starved
    # (a trip reported at 1,340 ms for a 1,000 ms timeout at load 6).
    with VirtualLine(2) as line, \
            DeviceProcess("motor", 9, line.ports[1], extra=["--comm-loss-s", str(TIMEOUT_S)],
                          realtime=True) as dev:
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


class Beat:
    """The host heartbeat (holding 4): a new value at each call."""

    def __init__(self, c):
        self.c, self.v = c, 0
        self.t = None  # monotonic time of the last one

    def __call__(self):
        self.v = (self.v + 1) & 0xFFFF
        assert not self.c.write_register(M["host_heartbeat"].address, self.v,
                                         device_id=9).isError()
        self.t = time.monotonic()


def settle(c, name, want, timeout_s=3.0, beat=None):
    """Poll until the output has ramped to want (the device ramps at 100 %/s
    here), with a heartbeat at each poll if given."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if beat is not None:
            beat()
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
    beat = Beat(c)
    wr(c, "arm", 1)
    assert settle(c, "speed_actual_pct", 80.0, beat=beat) == pytest.approx(80.0)
    assert rd(c, "running") is False
    beat()
    assert int(rd(c, "status")) & regmap.ST_ARMED
    t_last = beat.t  # the host goes silent
    line = dev.wait_line("comm loss", timeout_s=TIMEOUT_S + 2.0)
    t_trip = time.monotonic() - t_last
    assert line, "no comm-loss trip within %.1f s" % (TIMEOUT_S + 2.0)
    device_ms = int(re.search(r"no heartbeat for (\d+) ms", line).group(1))
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
    assert settle(c, "speed_actual_pct", 72.5, beat=Beat(c)) == pytest.approx(72.5)
    assert dev.wait_line("comm loss", timeout_s=TIMEOUT_S + 2.0)
    assert rd(c, "speed_actual_pct") == pytest.approx(72.5)
    assert rd(c, "running") is False
    assert rd(c, "arm") == 0


def test_polling_alone_does_not_keep_the_device_armed(motor):
    """A live master that polls but writes no heartbeat (a host whose loop
    died): the device goes safe one timeout after the last heartbeat."""
    c, dev = motor
    beat = Beat(c)
    wr(c, "arm", 1)
    t_end = time.monotonic() + 3 * TIMEOUT_S
    while time.monotonic() < t_end:  # heartbeats every ~0.1 s: armed all along
        beat()
        rd(c, "status")
        time.sleep(0.1)
    assert int(rd(c, "status")) & regmap.ST_ARMED and rd(c, "comm_loss_trips") == 0
    t_last = beat.t
    tripped = None
    while time.monotonic() - t_last < TIMEOUT_S + 1.0:  # polls every ~20 ms go on
        if not int(rd(c, "status")) & regmap.ST_ARMED:
            tripped = time.monotonic() - t_last
            break
    assert tripped is not None and TIMEOUT_S * 0.9 < tripped < TIMEOUT_S + 0.3, tripped
    line = dev.wait_line("comm loss", timeout_s=1.0)
    m = re.search(r"no heartbeat for (\d+) ms \(last frame (\d+) ms ago\)", line)
    assert m and int(m.group(2)) <= 100, line  # polled right up to the trip
    assert rd(c, "comm_loss_trips") == 1


# ---- the host service against the firmware -------------------------------------------

FAN = """
[loops.fan]
plant = "fan"
group = "process"
devices = { drive = "m1" }
process = { flow_sp_m3s = 25.0, flow_design_m3s = 50.0 }
"""


def _armed(d):
    return d.up and int(d.values.get("status", 0)) & regmap.ST_ARMED


def test_a_dead_loop_leaves_its_device_safe_within_its_timeout_while_polling_goes_on(tmp_path):
    from hil_tests.tests.test_service import Running, config, rtu_line, wait_for
    timeout_s = 2.5
    with VirtualLine(2, baud=115200) as line, DeviceProcess("motor", 1, line.ports[1]) as dev:
        cfg = config(tmp_path, rtu_line(line.ports[0]),
                     [("m1", 1, "comm_loss_timeout_s = %g" % timeout_s)], FAN)
        with Running(cfg) as svc:
            d = svc.devices["m1"]
            runner = svc.loops["fan"]
            assert wait_for(lambda: _armed(d) and runner.runs > 3, 15)
            assert wait_for(lambda: svc.protocols["m1"].beats >= 3, 5)
            good = runner.strategy.run

            def dead(t_s, snap):
                raise RuntimeError("strategy bug")

            runner.strategy.run = dead
            t_dead = time.monotonic()
            polls = d.polls
            trip = dev.wait_line("comm loss", timeout_s=timeout_s + 3.0)
            t_trip = time.monotonic() - t_dead
            assert trip, "no trip within %.1f s of the loop's death" % (timeout_s + 3.0)
            # Within its timeout of the last heartbeat, sent at most a quarter
            # of it before the loop died; the polls went on to the end.
            assert t_trip < timeout_s + 0.5, t_trip
            m = re.search(r"no heartbeat for (\d+) ms \(last frame (\d+) ms ago\)", trip)
            assert m and int(m.group(2)) < 200, trip
            assert wait_for(lambda: not _armed(d) and d.values.get("comm_loss_trips") == 1, 5)
            assert d.up and d.polls > polls + 10 and runner.mode == "error"
            runner.strategy.run = good
            assert wait_for(lambda: _armed(d) and runner.mode == "auto", 10)  # re-armed


def test_locked_settings_are_unlocked_written_and_relocked(tmp_path):
    from hil_tests.tests.test_service import Running, config, rtu_line, wait_for
    with VirtualLine(2, baud=115200) as line, \
            DeviceProcess("motor", 1, line.ports[1], extra=["--settings-locked", "1"]):
        cfg = config(tmp_path, rtu_line(line.ports[0]),
                     [("m1", 1, "speed_safe_pct = 67.5, min_speed_pct = 22")], FAN)
        with Running(cfg) as svc:
            d = svc.devices["m1"]
            assert wait_for(lambda: _armed(d) and d.values.get("speed_safe_pct") == 67.5
                            and d.values.get("min_speed_pct") == 22.0, 15), d.values
            assert wait_for(lambda: d.values.get("settings_lock") == 1, 10)  # locked again
            # Never refused by the device (a write timed out on a loaded host is
            # retried, and is no refusal of the key or of the settings).
            pr = svc.protocols["m1"]
            assert pr.refused == 0 or "exception" not in (pr.last_refusal or ""), pr.last_refusal
            runs = svc.loops["fan"].runs
            assert wait_for(lambda: svc.loops["fan"].runs > runs + 3 and _armed(d), 10)
    # Locked, the same settings from a plain client are refused with 04.
    with VirtualLine(2, baud=115200) as line, \
            DeviceProcess("motor", 9, line.ports[1], extra=["--settings-locked", "1"]):
        c = ModbusSerialClient(line.ports[0], baudrate=115200, timeout=0.5, retries=1)
        assert c.connect()
        r = c.write_registers(M["min_speed_pct"].address, [2200], device_id=9)
        assert r.isError() and r.exception_code == 4
        c.close()


def test_a_device_with_another_key_is_reported_and_never_armed(tmp_path):
    from hil_tests.tests.test_service import Running, config, rtu_line, wait_for
    with VirtualLine(2, baud=115200) as line, \
            DeviceProcess("motor", 1, line.ports[1],
                          extra=["--settings-locked", "1", "--settings-key", "0x1111,0x2222"]):
        cfg = config(tmp_path, rtu_line(line.ports[0]), [("m1", 1, "min_speed_pct = 22")], FAN)
        with Running(cfg) as svc:
            d = svc.devices["m1"]
            p = svc.protocols["m1"]
            assert wait_for(lambda: p.refused >= 2, 15)
            assert "refused the unlock key" in p.last_refusal, p.last_refusal
            assert not _armed(d) and d.values.get("min_speed_pct") == 20.0  # the default kept
