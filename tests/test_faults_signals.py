"""The signal_fault scenario event (hil_tests/plants/instruments.py): each mode
as the instruments read it, on the plant link, in model-in-the-loop, and its
errors; the campaign's invariants can fail (hil_tests/faults.py)."""

import math
import struct

import numpy as np
import pytest

from controller.config.toml import ConfigError
from controller.registers import point_map
from firmware import regmap
from hil_tests import sim
from hil_tests.plantlink import DeviceLink
from hil_tests.plants import PLANTS, plant_class
from hil_tests.plants.instruments import measured_points
from hil_tests.scenario import load_scenario

SCR_HEAD = """[scenario]
plant = "scr"
hours = 3.0
seed = 5

[profiles.load_pct]
points = [[0, 80], [3, 80]]

[profiles.nox_in_mg_nm3]
points = [[0, 350], [3, 350]]
"""


def scenario(tmp_path, events, head=SCR_HEAD, plant="scr"):
    path = tmp_path / "s.toml"
    path.write_text(head + "".join("\n[[events]]\nkind = \"signal_fault\"\n" + e for e in events))
    return load_scenario(str(path), plant_class(plant).SPEC, plant=plant)


def readings(sc, point, t_end_s, device="scr", plant="scr"):
    """(t, reading) of one point, measured after every 1 s plant step."""
    pl = plant_class(plant)(plant, sc)
    out = []
    for k in range(int(t_end_s)):
        pl.step(float(k), 1.0)
        out.append((pl.t_s, pl.measure()[device][point]))
    return out


def in_window(rs, t0, t1):
    return [v for t, v in rs if t0 <= t < t1]


@pytest.mark.parametrize("mode,value,expect", [
    ("high", None, 25.0),     # the O2 analyzer's 0-25 % span: its top, NE43-good
    ("low", None, 0.0),
    ("value", 21.0, 21.0),
])
def test_fixed_modes_read_what_the_instrument_would(tmp_path, mode, value, expect):
    ev = 'signal = "o2_pct"\nmode = "%s"\nat_h = 0.01\nduration_h = 0.01\n' % mode
    if value is not None:
        ev += "value = %r\n" % value
    rs = readings(scenario(tmp_path, [ev]), "o2_pct", 120)
    assert set(in_window(rs, 36, 72)) == {expect}
    assert all(v != expect and 3.0 < v < 6.0 for v in in_window(rs, 80, 120))  # over: the gas again


def test_stuck_drift_noise_and_wire_break(tmp_path):
    clean = readings(scenario(tmp_path, []), "nox_out_mg_nm3", 400)
    for mode, value in (("stuck", None), ("drift", 360.0), ("noise", 5.0), ("wire_break", None)):
        ev = 'signal = "nox_out_mg_nm3"\nmode = "%s"\nat_h = 0.05\nduration_h = 0.05\n' % mode
        if value is not None:
            ev += "value = %r\n" % value
        rs = readings(scenario(tmp_path, [ev]), "nox_out_mg_nm3", 400)
        c = dict(clean)
        inside = [(t, v) for t, v in rs if 180 <= t < 360]
        if mode == "stuck":
            assert {v for _, v in inside} == {c[179.0]}   # the last reading before the fault
        elif mode == "drift":
            # 360 mg/Nm3 per hour: 0.1 mg more every plant second since 180 s.
            assert all(v == pytest.approx(c[t] + 0.1 * (t - 180), abs=1e-9) for t, v in inside)
        elif mode == "noise":
            d = np.array([v - c[t] for t, v in inside])
            assert 3.5 < d.std() < 6.5 and abs(d.mean()) < 1.5
        else:
            assert all(math.isnan(v) for _, v in inside)
        # Outside the window the readings are the fault-free ones, draw for draw.
        assert [v for t, v in rs if t < 180 or t >= 360] == \
            [v for t, v in clean if t < 180 or t >= 360]


def test_device_and_alias_targets(tmp_path):
    head = (SCR_HEAD.replace('plant = "scr"', 'plant = "compressor"')
            .split("[profiles")[0] + "[profiles.demand_frac]\npoints = [[0, 0.6], [3, 0.6]]\n")
    sc = scenario(tmp_path, ['signal = "discharge_pressure_bar"\nmode = "high"\ndevice = "c2"\n'
                             'at_h = 0.0\n'], head=head, plant="compressor")
    pl = plant_class("compressor")("compressor", sc)
    pl.step(0.0, 1.0)
    m = pl.measure()
    assert m["c2"]["discharge_pressure_bar"] == 16.0
    assert all(m[d]["discharge_pressure_bar"] < 9.0 for d in ("c1", "c3", "vsd"))
    # The motor profile's process_sp is the process's set point (the DCS's 4-20 mA).
    head = ('[scenario]\nplant = "fan"\nhours = 1.0\n\n[profiles.demand]\n'
            'points = [[0, 0.6], [1, 0.6]]\n')
    sc = scenario(tmp_path, ['signal = "process_sp"\nmode = "wire_break"\nat_h = 0.0\n'],
                  head=head, plant="fan")
    pl = plant_class("fan")("fan", sc)
    pl.step(0.0, 1.0)
    assert math.isnan(pl.measure()["process"]["flow_sp_m3s"])


@pytest.mark.parametrize("body,msg", [
    ('signal = "o2"\nmode = "high"\n', "events.0.signal: signal_fault: unknown signal 'o2' for plant scr"),
    ('signal = "o2_pct"\nmode = "hot"\n', "events.0.mode: 'hot' is not one of high, low, stuck"),
    ('signal = "o2_pct"\nmode = "value"\n', "events.0.value: signal_fault: missing: mode 'value' needs a value"),
    ('signal = "o2_pct"\nmode = "drift"\n', "events.0.value: signal_fault: missing: mode 'drift' needs"),
    ('signal = "o2_pct"\nmode = "high"\nvalue = 3\n', "events.0.value: signal_fault: mode 'high' takes no value"),
    ('mode = "high"\n', "events.0.signal: signal_fault: missing: the measured point"),
    ('signal = "o2_pct"\nmode = "noise"\nvalue = -1\n', "events.0.value: -1 outside 0.."),
    ('signal = "o2_pct"\nmode = "high"\ndevice = "c1"\n', "events.0.device: 'c1' is not one of scr"),
    ('signal = "valve_pos_pct"\nmode = "high"\n', "unknown signal 'valve_pos_pct'"),  # feedback
])
def test_bad_events_are_errors_naming_the_event_and_its_line(tmp_path, body, msg):
    with pytest.raises(ConfigError) as e:
        scenario(tmp_path, [body + "at_h = 1.0\n"])
    assert msg in str(e.value)
    assert str(e.value).startswith(str(tmp_path / "s.toml") + ":1")  # the event's lines: 13-16


def test_every_plants_signals_are_its_measured_register_points():
    """What a signal_fault may name is exactly what the plant measures of its
    profile's measured points: not a feedback, nothing the plant leaves out."""
    for name in PLANTS:
        cls = plant_class(name)
        sc = load_scenario("%s_standard" % name, cls.SPEC, 1.0, None, name)
        pl = cls(name, sc)
        pl.step(0.0, sc.step_s)
        m = pl.measure()
        sigs = cls.SPEC["signals"]
        assert set(sigs) == set(cls.DEVICES)
        for dev, prof in cls.DEVICES.items():
            have = {p for p in measured_points(prof)
                    if p in m[dev] or (dev, p) in cls.ALIASES}
            assert set(sigs[dev]) == have, (name, dev)


def _records(msg):
    return [struct.unpack(">BBHH", msg[1 + 6 * i:7 + 6 * i]) for i in range((len(msg) - 1) // 6)]


def test_plant_link_carries_span_ends_and_broken_points_to_the_firmware():
    pm = point_map("scr")
    link = DeviceLink("scr", udp_port=1)
    try:
        recs = _records(link.datagram({"o2_pct": 25.0, "nox_in_mg_nm3": 0.0,
                                       "nox_out_mg_nm3": float("nan")}))
    finally:
        link.close()
    loop = {a: v for k, _, a, v in recs if k == 2}
    assert loop[pm["o2_pct"].address] == 20000        # high: 20 mA, NE43-good
    assert loop[pm["nox_in_mg_nm3"].address] == 4000  # low: 4 mA
    assert loop[pm["nox_out_mg_nm3"].address] < 3600  # wire break: NE43 bad
    # A point without a loop current (a meter) that is lost goes as quality bad.
    link = DeviceLink("fgd", udp_port=1)
    try:
        recs = _records(link.datagram({"pump1_power_kw": float("nan")}))
        slot = link.qidx["pump1_power_kw"]
    finally:
        link.close()
    assert (3, slot, 0, regmap.Q_BAD) in recs


def test_greenedge_sim_runs_a_signal_fault(tmp_path):
    path = tmp_path / "o2.toml"
    path.write_text(SCR_HEAD + '\n[[events]]\nkind = "signal_fault"\nsignal = "o2_pct"\n'
                    'mode = "value"\nvalue = 21.0\nat_h = 1.0\nduration_h = 1.0\n')
    seen = []
    sim.run("scr", "optimized", str(path), 3.0, observe=lambda t, pl, m, c: seen.append(
        (t, m["scr"]["o2_pct"]) if m is not None else None))
    o2 = {v for t, v in (s for s in seen if s) if 3600 + 1 <= t < 7200}
    assert o2 == {21.0}


class _Sc:
    step_s = 1.0


class _Scr:
    sc = _Sc()

    def __init__(self, nh3, nox_in=300.0, q=1.0e6):
        self.nh3_kgh, self.nox_in, self.q_nm3h = nh3, nox_in, q


def test_the_campaigns_nh3_invariants_can_fail():
    from hil_tests.faults import Watch
    need = 0.37023e-6 * 1.0e6 * 300.0  # kg/h NH3 for 300 mg/Nm3 NOx (as NO2) at 1e6 Nm3/h
    w = Watch("scr", 1.0, nh3_peak=200.0, cap=1.2)
    for t in range(10):
        w(float(t), _Scr(1.19 * need), None, {})
    assert w.unsafe == {}
    w(10.0, _Scr(1.21 * need), None, {})
    assert list(w.unsafe) == ["NH3 above the molar-ratio cap 1.2"]
    w = Watch("scr", 1.0, nh3_peak=100.0, cap=1.2)
    w(0.0, _Scr(110.5, nox_in=1000.0), None, {})
    assert list(w.unsafe) == ["NH3 above 1.1 x the fault-free peak (100.0 kg/h)"]
    w = Watch("scr", 1.0)
    w(0.0, _Scr(1.0, nox_in=0.0), None, {"scr": {"valve_cmd_pct": float("nan")}})
    assert set(w.unsafe) == {"NH3 above the molar-ratio cap 1.2",
                             "command scr.valve_cmd_pct not a number"}


class _Station:
    sc = _Sc()
    NAMES = ("c1", "c2", "c3", "vsd")

    def __init__(self, loaded):
        self.state = {n: {"loaded": int(n == "c1" and loaded)} for n in self.NAMES}


def test_the_campaigns_blind_compressor_invariant_can_fail():
    from hil_tests.faults import Watch
    blind = {n: {"discharge_pressure_bar": 16.0} for n in _Station.NAMES}  # 20 mA: not valid
    one = dict(blind, vsd={"discharge_pressure_bar": 6.4})
    w = Watch("compressor", 1.0)
    for t in range(31):  # the 30 s hold and the strategy's next run (1 s)
        w(float(t), _Station(True), blind, {})
    assert w.unsafe == {}
    w(31.0, _Station(True), blind, {})
    assert list(w.unsafe) == ["compressor loaded without a valid pressure reading > 31 s"]
    w = Watch("compressor", 1.0)
    for t in range(100):  # one good transmitter, or nothing loaded: fine
        w(float(t), _Station(True), one, {})
        w(float(t), _Station(False), blind, {})
    assert w.unsafe == {}
