"""A metering motor device on the unix port: live electrical values over Modbus.

The synthetic ADC (a simulated 400 V supply and a fan-law motor load driven by
the device's own outputs) feeds the real viper metering kernel in real time;
the host reads the metering registers with quality. Runs in a 72 KB heap at
the configured 2,400 sample sets/s: the length-aware RTU receiver and the
settings lock (issue 14) added ~4.5 KB of x64 code, and a metering device no
longer boots in 64 KB on the unix port (HEAP below; to be won back).
"""

import time

import pytest
from pymodbus.client import ModbusSerialClient

from controller import registers
from firmware import regmap
from hil_tests.devices import DeviceProcess

HEAP = "72K"
from hil_tests.vline import VirtualLine

M = registers.point_map("motor")


def rd(c, name):
    p = M[name]
    fn = c.read_input_registers if p.table == "input" else c.read_holding_registers
    return p.decode(fn(p.address, count=p.words, device_id=4).registers)


def quality(c, name):
    slots = [p[0] for p in registers.quality_slots(regmap.points("motor"))]
    k = slots.index(name)
    w = c.read_input_registers(16 + k // 8, count=1, device_id=4).registers[0]
    return (w >> (2 * (k % 8))) & 3


def until(fn, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
    return fn()


@pytest.fixture(scope="module")
def meter_dev(tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    with VirtualLine(2) as line, DeviceProcess(
            "motor", 4, line.ports[1], heap=HEAP,
            extra=["--metering", "1", "--state-dir", str(state), "--energy-step-wh", "1",
                   # a flash budget that allows a save every 0.3 s (10 years / 1e9 cycles)
                   "--flash-cycles", "1000000000"]) as dev:
        c = ModbusSerialClient(line.ports[0], baudrate=115200, timeout=0.5, retries=1)
        assert c.connect()
        yield c, dev, state
        c.close()


def test_live_metering_values(meter_dev):
    c, dev, _ = meter_dev
    c.write_registers(M["ramp_up_pct_s"].address, [10000, 10000], device_id=4)
    c.write_register(M["speed_ref_pct"].address, 8000, device_id=4)
    c.write_coil(M["run_cmd"].address, True, device_id=4)
    c.write_register(M["arm"].address, 1, device_id=4)
    assert until(lambda: abs(rd(c, "speed_actual_pct") - 80.0) < 0.01)
    time.sleep(0.5)  # two metering blocks (5 mains cycles each) at the new load
    assert rd(c, "voltage_l1_v") == pytest.approx(230.0, rel=0.01)
    assert rd(c, "voltage_l3_v") == pytest.approx(230.0, rel=0.01)
    assert rd(c, "frequency_hz") == pytest.approx(50.0, abs=0.01)
    assert rd(c, "power_factor") == pytest.approx(0.86, abs=0.01)
    # The model: current ~ sqrt(speed^3) x 0.9 of the rated 268.5 A at 80 % speed.
    i = rd(c, "current_l2_a")
    assert i == pytest.approx(268.5 * 0.512 ** 0.5 * 0.9, rel=0.02)
    p = rd(c, "power_kw")
    assert p == pytest.approx(3 * 230.0 * i * rd(c, "power_factor") / 1000, rel=0.01)
    assert p == pytest.approx(102.6, rel=0.03)
    assert 0.02 < rd(c, "thd_i_pct") / 100 < 0.06  # 4 % third harmonic in the model
    for name in ("voltage_l1_v", "current_l1_a", "power_kw", "frequency_hz"):
        assert quality(c, name) == regmap.Q_GOOD, name


def test_energy_counts_and_is_persisted(meter_dev):
    c, dev, state = meter_dev
    e0 = rd(c, "energy_kwh")
    assert until(lambda: rd(c, "energy_kwh") >= e0 + 0.002, timeout_s=10.0)
    # Two slots "<seq> <wh> <crc>": the newest holds the count.
    slots = [(state / ("energy_4.dat.%d" % k)).read_text().split()
             for k in (0, 1) if (state / ("energy_4.dat.%d" % k)).exists()]
    saved = int(max(slots, key=lambda s: int(s[0]))[1])
    # Saved every 1 Wh at most every 0.3 s: within a second of energy of the register.
    lag_wh = rd(c, "power_kw") * 1000 / 3600 + 2
    assert saved >= rd(c, "energy_kwh") * 1000 - lag_wh


def test_burst_sampling_device():
    """The ESP32/STM32 way on the unix port: one-cycle bursts every 200 ms, the
    line served between them; values as accurate, energy over wall time."""
    with VirtualLine(2) as line, DeviceProcess(
            "motor", 4, line.ports[1], heap=HEAP,
            extra=["--metering", "1", "--adc-burst", "1", "--burst-every-ms", "200"]):
        c = ModbusSerialClient(line.ports[0], baudrate=115200, timeout=0.5, retries=1)
        assert c.connect()
        try:
            c.write_registers(M["ramp_up_pct_s"].address, [10000, 10000], device_id=4)
            c.write_register(M["speed_ref_pct"].address, 10000, device_id=4)
            c.write_coil(M["run_cmd"].address, True, device_id=4)
            c.write_register(M["arm"].address, 1, device_id=4)
            assert until(lambda: abs(rd(c, "speed_actual_pct") - 100.0) < 0.01)
            time.sleep(0.5)  # two bursts at full load
            assert rd(c, "voltage_l2_v") == pytest.approx(230.0, rel=0.01)
            assert rd(c, "frequency_hz") == pytest.approx(50.0, abs=0.02)
            assert rd(c, "power_factor") == pytest.approx(0.86, abs=0.01)
            p = rd(c, "power_kw")
            assert p == pytest.approx(160.0 * 0.9, rel=0.03)  # rated x the model's 0.9
            e0, t0 = rd(c, "energy_kwh"), time.monotonic()
            time.sleep(3.0)
            e1, t1 = rd(c, "energy_kwh"), time.monotonic()
            # Each burst's power counts for the 200 ms since the previous one.
            assert (e1 - e0) * 3.6e6 == pytest.approx(p * 1000 * (t1 - t0), rel=0.12)
        finally:
            c.close()


def test_a_metering_compressor_on_the_plant_link_boots_with_the_default_heap():
    """The bench's metering compressor (synthetic ADC + plant link) needs more
    than 72 KB on x64; the default heap for its options boots it and it serves
    its metering registers."""
    import socket
    from controller import mpvm
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    extra = ["--metering", "1", "--link", str(port)]
    assert mpvm.default_heap(extra) == mpvm.HEAP_METERING_LINK
    C = registers.point_map("compressor")
    with VirtualLine(2) as line, DeviceProcess("compressor", 5, line.ports[1], extra=extra):
        c = ModbusSerialClient(line.ports[0], baudrate=115200, timeout=0.5, retries=1)
        assert c.connect()
        try:
            p = C["voltage_l2_v"]
            v = until(lambda: p.decode(c.read_input_registers(p.address, count=p.words,
                                                              device_id=5).registers))
            assert v == pytest.approx(230.0, rel=0.01)
        finally:
            c.close()
