"""Plant simulators reproduce their published behaviour; balances close; bad
scenario files get errors naming the file, the key and the line."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from hil_tests import sim
from controller.config.toml import ConfigError
from hil_tests.plants import plant_class
from hil_tests.plants.fan_pump import ie_efficiency
from hil_tests.scenario import load_scenario


def make(plant, scenario=None, options=None, **over):
    cls = plant_class(plant)
    sc = load_scenario(scenario or "%s_standard" % plant, cls.SPEC)
    if over:
        from hil_tests.plants.base import load_params
        params = load_params(plant, cls.PARAMS)
        params.update(over)
        return cls(plant, sc, params, options)
    return cls(plant, sc, options=options)


def test_fan_affinity_20pct_speed_cut_halves_power():
    fan = make("fan")
    p100 = fan.operating_point(1.0, 1.0)
    p80 = fan.operating_point(0.8, 1.0)
    assert p80[0] / p100[0] == pytest.approx(0.8, rel=1e-9)       # Q ~ n
    assert p80[1] / p100[1] == pytest.approx(0.64, rel=1e-9)      # dp ~ n^2
    assert 1 - p80[2] / p100[2] == pytest.approx(0.49, abs=0.02)  # P ~ n^3: ~50 % saved


def test_pump_with_static_head_at_60pct_flow():
    # docs/models.md section 1: 60 % flow with 40 % static head: shaft power ~0.37 Pd on a VSD.
    pump = make("pump")
    qd = pump.p["design_flow_m3s"]
    pd = pump.operating_point(1.0, 1.0)[2]
    lo, hi = 0.3, 1.0
    for _ in range(60):
        n = (lo + hi) / 2
        lo, hi = (n, hi) if pump.operating_point(n, 1.0)[0] < 0.6 * qd else (lo, n)
    q, dp, shaft = pump.operating_point(n, 1.0)
    assert q == pytest.approx(0.6 * qd, rel=1e-6)
    assert shaft / pd == pytest.approx(0.37, abs=0.06)
    # Throttling to the same flow at full speed costs far more.
    lo, hi = 0.05, 1.0
    for _ in range(60):
        d = (lo + hi) / 2
        lo, hi = (d, hi) if pump.operating_point(1.0, d)[0] < 0.6 * qd else (lo, d)
    assert pump.operating_point(1.0, d)[2] / pd > 0.6


@pytest.mark.parametrize("kw, cls, pct", [(11, "IE2", 89.8), (11, "IE3", 91.4), (11, "IE4", 93.3),
                                          (75, "IE2", 94.0), (75, "IE3", 95.0), (75, "IE4", 96.0)])
def test_motor_efficiency_classes(kw, cls, pct):
    assert 100 * ie_efficiency(kw, cls) == pytest.approx(pct, abs=0.1)


def test_motor_part_load_efficiency_peaks_near_75pct():
    fan = make("fan", options={"drive": "dol"})  # the motor alone, no VFD losses
    pr = fan.p["motor_rated_kw"]
    eff = {x: x * pr / fan.electrical_kw(x * pr, 1.0) for x in np.linspace(0.2, 1.0, 81)}
    best = max(eff, key=eff.get)
    assert 0.6 <= best <= 0.85
    assert eff[0.2] < eff[best] - 0.02


def _compressor_power_at(p_barg):
    st = make("compressor", initial_pressure_barg=p_barg)
    st.actuate("c1", "run_cmd", 1)
    st.actuate("c1", "load_cmd", 1)
    st.step(0.0, 1e-6)
    return st.state["c1"]["kw"]


def test_compressor_power_rises_7pct_per_bar():
    assert _compressor_power_at(8.0) / _compressor_power_at(7.0) == pytest.approx(1.07, abs=0.005)


def test_compressor_air_balance_closes():
    st = make("compressor")
    p0 = st.header.p_bar
    net = 0.0
    for k in range(1800):
        for m in ("c1", "c2"):
            st.actuate(m, "run_cmd", 1)
            st.actuate(m, "load_cmd", 1)
        st.step(float(k), 1.0)
        net += (st.supply_m3min - st.demand_m3min - st.leak_m3min) / 60.0
    dp = st.header.p_bar - p0
    assert dp > 0.5  # the header filled: no clamping at either end
    # V/p_atm * dp = net free-air volume (leak sampled at step ends: first order in dt)
    assert st.p["volume_m3"] / 1.01325 * dp == pytest.approx(net, rel=0.02)


def _scr_steady(anr, load_pct=100.0, t_c=None):
    scr = make("scr")
    q, t, _ = scr.gas(load_pct)
    t = t if t_c is None else t_c
    T = t + 273.15
    F = q / 3600 * T / 273.15
    cno = 350 / 1000 / 46.0055 * 273.15 / T
    for _ in range(400):
        no, nh3 = scr.reactor.step(30.0, F, T, cno, anr * cno)
    return 1 - no / cno, nh3 / (101325 / (8.314462618 * T)) * 1e6


def test_scr_reference_point_efficiency_and_slip():
    res = {anr: _scr_steady(anr) for anr in (0.90, 0.95, 1.00)}
    assert res[0.90][0] == pytest.approx(0.877, abs=0.01)
    assert res[0.95][0] == pytest.approx(0.916, abs=0.01)
    assert res[1.00][0] == pytest.approx(0.942, abs=0.01)
    assert res[0.90][1] == pytest.approx(2.2, abs=0.5)
    assert res[0.90][1] < res[0.95][1] < res[1.00][1]


def test_scr_slip_falls_with_temperature():
    slips = [_scr_steady(0.9, t_c=t)[1] for t in (310, 350, 390)]
    assert slips[0] > slips[1] > slips[2]
    assert slips[1] == pytest.approx(3.1, abs=0.6) and slips[2] == pytest.approx(1.8, abs=0.4)


def _scr_t63(load_pct):
    scr = make("scr")
    q, t, _ = scr.gas(load_pct)
    T = t + 273.15
    F = q / 3600 * T / 273.15
    cno = 350 / 1000 / 46.0055 * 273.15 / T
    for _ in range(600):
        scr.reactor.step(30.0, F, T, cno, 0.8 * cno)
    no0 = scr.reactor.c_no_out
    traj = [scr.reactor.step(5.0, F, T, cno, 0.95 * cno)[0] for _ in range(1200)]
    final = traj[-1]
    k = next(i for i, v in enumerate(traj) if (no0 - v) >= 0.632 * (no0 - final))
    return 5.0 * (k + 1)


def test_scr_responds_slower_at_low_load():
    full, half = _scr_t63(100), _scr_t63(50)
    assert 150 < full < 700
    assert half > 1.5 * full


@pytest.mark.parametrize("pumps, ph, out", [(3, 5.5, 48.5), (4, 5.5, 24.0), (5, 5.5, 13.0), (3, 5.8, 24.0)])
def test_fgd_pump_ph_table(pumps, ph, out):
    fgd = make("fgd", M0_kmol=100.0 * 10 ** (ph - 5.5))
    ph_now, eta = fgd.inv.step(0.0, 0.0, 0.0, float(pumps))
    assert ph_now == pytest.approx(ph)
    assert 2000 * (1 - eta) == pytest.approx(out, rel=0.06)


def test_fgd_limestone_balance_closes():
    fgd = make("fgd")
    m0 = fgd.inv.M_kmol
    fed = absorbed = bleed = 0.0
    for k in range(7200):
        for i in range(1, 6):
            fgd.actuate("fgd", "pump%d_run" % i, 1 if i <= 4 else 0)
        fgd.actuate("fgd", "feeder_cmd_pct", 50.0)
        fgd.step(float(k), 1.0)
        fed += fgd.feed_kmol_s
        absorbed += fgd.inv.absorbed_kmol_s
        bleed += fgd.inv.M_kmol / (fgd.p["tau_bleed_h"] * 3600)
    assert fgd.inv.M_kmol - m0 == pytest.approx(fed - absorbed - bleed, rel=0.01)


def test_same_seed_same_result_and_unknown_strategy():
    a = sim.run("fan", hours=2, seed=5)
    b = sim.run("fan", hours=2, seed=5)
    for k in a:
        if k not in ("wall_s", "computational_time_ratio"):
            assert a[k] == b[k], k
    with pytest.raises(ValueError, match="unknown strategy 'mpc' for scr"):
        sim.run("scr", strategy="mpc")


def test_sim_cli_json_and_plot(tmp_path):
    r = subprocess.run([sys.executable, "-m", "controller.cli", "sim", "--plant", "fgd",
                        "--hours", "1", "--json", "--plot", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("plant", "strategy", "scenario", "hours", "energy_kwh", "co2_kg",
                "so2_hourly_max_mg_nm3", "so2_exceed_hours", "recirc_pump_kwh", "limestone_kg",
                "ph_in_band_frac", "wall_s"):
        assert key in out, key
    assert out["hours"] == 1.0 and out["recirc_pump_kwh"] > 0
    png = list(tmp_path.glob("*.png"))
    assert png and png[0].read_bytes()[:4] == b"\x89PNG"
    r = subprocess.run([sys.executable, "-m", "controller.cli", "sim", "--plant", "scr",
                        "--scenario", "fgd_standard"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "scenario.plant: scenario is for plant 'fgd', not 'scr'" in r.stderr


BAD = [
    ('[scenario]\nname = "x"\nplant = "fan"\nhours = "long"\n', "scenario.hours", 4, "expected a number"),
    ('[scenario]\nplant = "fan"\ncolour = 3\n[profiles.demand]\npoints = [[0, 0.5]]\n', "scenario.colour", 3, "unknown key"),
    ('[scenario]\nplant = "fan"\n\n[profiles.demand]\npoints = [[0, 0.5], [1, 2.5]]\n', "profiles.demand.points", 5, "0..1.2"),
    ('[scenario]\nplant = "fan"\n[profiles.demand]\npoints = [[2, 0.5], [1, 0.5]]\n', "profiles.demand.points", 4, "must not decrease"),
    ('[scenario]\nplant = "fan"\n[profiles.demnd]\npoints = [[0, 0.5]]\n', "profiles.demand", None, "missing profile"),
    ('[scenario]\nplant = "fan"\n[profiles.demand]\npoints = [[0, 0.5]]\n[[events]]\nkind = "meteor"\nat_h = 1\n', "events.0.kind", 6, "not one of"),
    ('[scenario]\nplant = "fan"\n[profiles.demand]\npoints = [[0, 0.5]]\nnoise = [1]\n', "profiles.demand.noise", 5, "expected a number"),
    ('[scenario\nplant = "fan"\n', None, 1, "TOML syntax"),
]


@pytest.mark.parametrize("text, key, line, msg", BAD)
def test_bad_scenario_errors_name_file_key_line(tmp_path, text, key, line, msg):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_scenario(str(f), plant_class("fan").SPEC)
    err = e.value
    assert err.path == str(f)
    assert err.key == key
    if line is not None:
        assert err.line == line
    assert msg in str(err) and str(f) in str(err)


def test_bad_plant_parameter_file(tmp_path):
    from hil_tests.plants.base import load_params
    f = tmp_path / "fan.toml"
    f.write_text("[fan]\ndesign_flow_m3s = -5\n")
    with pytest.raises(ConfigError, match=r"fan.toml:2: fan.design_flow_m3s: -5 outside"):
        load_params("fan", plant_class("fan").PARAMS, f)
