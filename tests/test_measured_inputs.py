"""A strategy sees only what the plant measures (issue 15, "Measured inlets").

Two identical plants (same scenario, same seed) run side by side, each with its
own strategy. Before every measurement, the second plant's hidden state (the
true concentrations, flows, pH, temperatures, pump states, powers: everything
the KPI frame reads and no instrument reports) is replaced by garbage (NaN,
1e9); it is put back before the plant steps. If a measured point read the
plant's state instead of its instrument, the garbage would reach the strategy
and its commands would differ. The instruments themselves are checked against
their parameters: dead time, lag, noise, drift, blow-back and calibration holds.
"""

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest

from controller.loops import strategy_class
from hil_tests.plants import plant_class
from hil_tests.plants.analyzer import Cems, FlowMeter
from hil_tests.scenario import load_scenario

# The plant state no strategy may read, per plant (attribute -> garbage kind).
HIDDEN = {
    "scr": ("nox_in", "nox_out", "slip_ppm", "nh3_kgh", "load", "temp_c", "o2", "q_nm3h"),
    "fgd": ("so2_in", "so2_out", "q_nm3h", "ph", "eta", "feed_kmol_s", "pump_kw", "blower_kw",
            "so2_kmol_s", "running", "ox_frac", "sulfite_frac", "sulfite_mass", "gypsum_purity",
            "air_nm3h", "sr", "s_kmol", "sul_kmol"),
}
STRATS = ("typical", "best-practice", "optimized")


def _garbage(v, bad):
    if isinstance(v, list):
        return [bad] * len(v)
    if isinstance(v, np.ndarray):
        return np.full_like(v, bad, dtype=float)
    return bad


class _Garbled:
    """While open, the plant's hidden state is garbage; closing puts it back."""

    def __init__(self, plant, names, bad):
        self.plant, self.bad = plant, bad
        self.names = [n for n in names if hasattr(plant, n)]

    def __enter__(self):
        self.saved = {n: getattr(self.plant, n) for n in self.names}
        for n in self.names:
            setattr(self.plant, n, _garbage(self.saved[n], self.bad))
        if "o2_pct" in getattr(self.plant, "p", {}):
            self.saved_o2 = self.plant.p["o2_pct"]
            self.plant.p["o2_pct"] = self.bad
        return self

    def __exit__(self, *exc):
        for n, v in self.saved.items():
            setattr(self.plant, n, v)
        if hasattr(self, "saved_o2"):
            self.plant.p["o2_pct"] = self.saved_o2


def _lockstep(plant, strategy, scenario, hours, bad):
    cls = plant_class(plant)
    sc_a = load_scenario(scenario, cls.SPEC, hours)
    sc_b = load_scenario(scenario, cls.SPEC, hours)
    sa, sb = strategy_class(plant, strategy)(), strategy_class(plant, strategy)()
    pa = cls(plant, sc_a, options=sa.plant_options)
    pb = cls(plant, sc_b, options=sb.plant_options)
    every = max(1, int(round(sa.period_s / sc_a.step_s)))
    t, dt = 0.0, sc_a.step_s
    n_cmp = 0
    names = HIDDEN[plant]
    for k in range(int(round(hours * 3600 / dt))):
        if k % every == 0:
            ma = pa.measure()
            with _Garbled(pb, names, bad) as g:
                assert g.names, "no hidden state to garble on %s" % plant
                mb = pb.measure()
            ca, cb = sa.run(t, ma), sb.run(t, mb)
            assert _same(ma, mb), "t=%.0f s: %s/%s measured differs with garbage truth:\n%s" % (
                t, plant, strategy, _diff(ma, mb))
            assert _same(ca, cb), "t=%.0f s: %s/%s commands differ with garbage truth:\n%s" % (
                t, plant, strategy, _diff(ca, cb))
            n_cmp += 1
            for pl, cmds in ((pa, ca), (pb, cb)):
                for dev, pts in cmds.items():
                    for name, value in pts.items():
                        pl.actuate(dev, name, value)
        pa.step(t, dt)
        pb.step(t, dt)
        t += dt
    return n_cmp, pa


def _flat(d, pre=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, pre + k + "."))
        else:
            out[pre + k] = v
    return out


def _eq(a, b):
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    return fa == fb or (math.isnan(fa) and math.isnan(fb))


def _same(a, b):
    fa, fb = _flat(a), _flat(b)
    return fa.keys() == fb.keys() and all(_eq(fa[k], fb[k]) for k in fa)


def _diff(a, b):
    fa, fb = _flat(a), _flat(b)
    return "\n".join("  %s: %r vs %r" % (k, fa.get(k), fb.get(k))
                     for k in sorted(set(fa) | set(fb)) if not _eq(fa.get(k), fb.get(k)))[:2000]


@pytest.mark.parametrize("bad", [math.nan, 1e9])
@pytest.mark.parametrize("plant, scenario", [("scr", "scr_standard"), ("fgd", "fgd_standard"),
                                             ("fgd", "fgd_disturbances")])
@pytest.mark.parametrize("strategy", STRATS)
def test_garbage_truth_does_not_reach_the_strategy(plant, scenario, strategy, bad):
    n, pl = _lockstep(plant, strategy, scenario, 1.5, bad)
    assert n >= 1000
    # The clean plant really ran: the strategy did something worth comparing.
    if plant == "fgd":
        assert sum(pl.running) >= 1 and pl.so2_out < 100
    else:
        assert pl.nh3_kgh > 0


def _write(tmp, name, text):
    p = Path(tmp) / (name + ".toml")
    p.write_text(text)
    return str(p)


FGD_STEP = """
[scenario]
name = "fgd_step"
plant = "fgd"
hours = 3.0
seed = 3
[profiles.load_pct]
points = [[0, 100], [3, 100]]
[profiles.so2_in_mg_nm3]
points = [[0, 2000], [3, 2000]]
[[events]]
kind = "so2_step"
at_h = 0.25
duration_h = 2.0
frac = 0.5
"""


def _run_fgd(text, hours, strategy="best-practice", over=None):
    """(t, truth, measured) rows every second of an FGD run."""
    from hil_tests.plants.base import load_params
    cls = plant_class("fgd")
    with tempfile.TemporaryDirectory() as tmp:
        sc = load_scenario(_write(tmp, "s", text), cls.SPEC, hours)
    params = load_params("fgd", cls.PARAMS)
    params.update(over or {})
    strat = strategy_class("fgd", strategy)()
    pl = cls("fgd", sc, params)
    rows = []
    t = 0.0
    for _ in range(int(hours * 3600)):
        m = pl.measure()
        for dev, pts in strat.run(t, m).items():
            for k, v in pts.items():
                pl.actuate(dev, k, v)
        rows.append((t, dict(pl.truth(), so2_in=pl.so2_in, ph=pl.ph), m["fgd"]))
        pl.step(t, 1.0)
        t += 1.0
    return pl, rows


def test_fgd_inlet_so2_reading_has_the_analyzers_dead_time_and_lag():
    pl, rows = _run_fgd(FGD_STEP, 0.5, over={"so2_in_noise": 0.0, "so2_in_drift_per_day": 0.0,
                                              "so2_in_blowback_every_h": 0.0})
    dead, lag = pl.p["so2_in_dead_time_s"], pl.p["so2_in_lag_s"]
    t0 = 0.25 * 3600
    at = {int(t): m["so2_in_mg_nm3"] for t, _, m in rows}
    truth = {int(t): x["so2_in"] for t, x, _ in rows}
    assert truth[int(t0) + 2] == pytest.approx(3000, rel=0.01)   # the gas stepped
    # Before the dead time has passed, the reading is still the old inlet.
    assert at[int(t0 + dead - 3)] == pytest.approx(2000, rel=0.01)
    # One lag after the dead time: about 63 % of the step.
    frac = (at[int(t0 + dead + lag)] - 2000) / 1000
    assert 0.5 < frac < 0.75
    # Settled after five lags.
    assert at[int(t0 + dead + 6 * lag)] == pytest.approx(3000, rel=0.01)


def test_fgd_inlet_so2_blowback_holds_the_reading_while_the_gas_moves():
    # Blow-back at 0.25 h for 240 s, the step 60 s into it: the reading holds the
    # pre-step value for the whole purge, then follows.
    text = FGD_STEP.replace("at_h = 0.25", "at_h = 0.2667")
    pl, rows = _run_fgd(text, 0.5, over={"so2_in_noise": 0.0, "so2_in_drift_per_day": 0.0,
                                          "so2_in_blowback_every_h": 2.0,
                                          "so2_in_blowback_phase_h": 0.25,
                                          "so2_in_blowback_s": 240.0})
    bb0 = 0.25 * 3600
    held = [m["so2_in_mg_nm3"] for t, _, m in rows if bb0 + 1 <= t < bb0 + 240]
    assert len(held) > 200 and max(held) - min(held) == 0.0
    assert held[0] == pytest.approx(2000, rel=0.01)
    truth_in = [x["so2_in"] for t, x, _ in rows if bb0 + 100 <= t < bb0 + 240]
    assert min(truth_in) > 2900            # the gas was at 3000 meanwhile
    after = {int(t): m["so2_in_mg_nm3"] for t, _, m in rows}
    assert after[int(bb0 + 240 + 60)] > 2900   # released: the live value


def test_cems_noise_drift_and_calibration_reset():
    # 1 s steps, a constant true 1000: the reading's std is the noise; the drift
    # grows linearly at most drift_per_day, and is back to 0 after a calibration.
    cems = Cems(1.0, 10.0, 5.0, noise=5.0, drift_per_day=48.0, cal_every_h=6.0, cal_s=300.0,
                cal_phase_h=3.0, initial=1000.0, seed=[1, 2])
    xs = {}
    for k in range(int(5.9 * 3600)):
        cems.step(float(k), 1000.0)
        xs[k + 1] = cems.reading()
    early = np.array([xs[k] for k in range(600, 1200)])
    assert np.std(early) == pytest.approx(5.0, rel=0.15)
    d_before = cems.drift(3 * 3600 - 1.0)
    assert 0 < abs(d_before) <= 48.0 * 3 / 24 + 1e-9
    assert abs(np.mean([xs[k] for k in range(3 * 3600 - 900, 3 * 3600 - 10)]) - 1000.0
               - d_before) < 2.0
    # During the calibration the output is held; afterwards the drift restarts from 0.
    cal = [xs[k] for k in range(3 * 3600 + 2, 3 * 3600 + 299)]
    assert max(cal) == min(cal)
    assert abs(cems.drift(3 * 3600 + 300 + 60.0)) < 48.0 / 1440 * 1.01


def test_flow_meter_bias_lag_and_noise():
    fm = FlowMeter(1.0, bias_frac=0.03, noise_frac=0.0, lag_s=5.0, initial=1.0e6, seed=1)
    for _ in range(3):
        fm.step(1.0e6)
    assert fm.reading() == pytest.approx(1.03e6)
    fm.step(2.0e6)
    assert fm.reading() < 1.3e6          # lagged, not at once
    for _ in range(60):
        fm.step(2.0e6)
    assert fm.reading() == pytest.approx(2.06e6, rel=1e-3)
    noisy = FlowMeter(1.0, 0.0, 0.01, 1.0, 1.0e6, seed=2)
    xs = [noisy.reading() for _ in range(2000)]
    assert np.std(xs) / 1e6 == pytest.approx(0.01, rel=0.1)


PH_FLAT = """
[scenario]
name = "fgd_flat"
plant = "fgd"
hours = 30.0
seed = 5
[profiles.load_pct]
points = [[0, 100], [30, 100]]
[profiles.so2_in_mg_nm3]
points = [[0, 2000], [30, 2000]]
"""


def test_fgd_ph_is_a_probe_with_lag_noise_drift_and_wash_hold():
    """The pH the strategies read is a probe's reading, not the slurry's pH:
    it lags the slurry, carries noise and a calibration drift, holds during the
    probe wash; with its noise, drift and lag off it reads the slurry's pH."""
    pl, rows = _run_fgd(PH_FLAT, 6.0)
    p = pl.p
    err = np.array([m["ph"] - x["ph"] for t, x, m in rows if t > 600])
    assert np.max(np.abs(err)) > 0.005                        # not the truth
    assert np.max(np.abs(err)) < p["ph_drift_per_day"] * 6 / 24 + 6 * p["ph_noise"] + 0.02
    # Wash: the reading holds for ph_blowback_s every ph_blowback_every_h.
    w0 = p["ph_blowback_phase_h"] * 3600
    held = [m["ph"] for t, _, m in rows if w0 + 1 <= t < w0 + p["ph_blowback_s"] - 1]
    assert len(held) > 10 and max(held) == min(held)
    # An ideal probe (no noise, drift, lag, dead time, wash) reads the slurry.
    over = {"ph_noise": 0.0, "ph_drift_per_day": 0.0, "ph_lag_s": 0.0, "ph_dead_time_s": 0.0,
            "ph_blowback_every_h": 0.0, "ph_cal_every_h": 0.0}
    pl, rows = _run_fgd(PH_FLAT, 1.0, over=over)
    err = np.array([m["ph"] - x["ph"] for t, x, m in rows if t > 600])
    assert np.max(np.abs(err)) < 0.01


def test_fgd_ph_lag_delays_the_reading():
    # The limestone feeder at 0 with every pump running: the slurry's pH falls;
    # a probe with a 600 s lag reads above it by a clear margin.
    from hil_tests.plants.base import load_params
    cls = plant_class("fgd")
    with tempfile.TemporaryDirectory() as tmp:
        sc = load_scenario(_write(tmp, "s", PH_FLAT), cls.SPEC, 2.0)
    params = load_params("fgd", cls.PARAMS)
    params.update(ph_noise=0.0, ph_drift_per_day=0.0, ph_blowback_every_h=0.0,
                  ph_cal_every_h=0.0, ph_dead_time_s=0.0, ph_lag_s=600.0)
    pl = cls("fgd", sc, params)
    for i in range(1, 6):
        pl.actuate("fgd", "pump%d_run" % i, 1)
    pl.actuate("fgd", "feeder_cmd_pct", 0.0)
    t = 0.0
    lagging = []
    for _ in range(1800):
        pl.step(t, 1.0)
        t += 1.0
        lagging.append(pl.measure()["fgd"]["ph"] - pl.ph)
    # pH falls; a 600 s lag reads above the slurry by a clear margin.
    assert pl.ph < 5.4
    assert max(lagging) > 0.03


def test_fgd_pump_run_feedback_follows_the_pump_after_its_delay():
    from hil_tests.plants.base import load_params
    cls = plant_class("fgd")
    with tempfile.TemporaryDirectory() as tmp:
        sc = load_scenario(_write(tmp, "s", PH_FLAT), cls.SPEC, 1.0)
    params = load_params("fgd", cls.PARAMS)
    params["run_fb_delay_s"] = 5.0
    pl = cls("fgd", sc, params)
    pl.actuate("fgd", "pump1_run", 1)
    seen = []
    for k in range(12):
        pl.step(float(k), 1.0)
        seen.append((pl.running[0], pl.measure()["fgd"]["pump1_running"]))
    assert seen[0] == (1, 0)                       # running, not yet reported
    first = next(i for i, (_, fb) in enumerate(seen) if fb)
    assert first == 5                              # five steps later
    assert all(fb == 1 for _, fb in seen[first:])


SCR_STEP = """
[scenario]
name = "scr_step"
plant = "scr"
hours = 1.0
seed = 3
[profiles.load_pct]
points = [[0, 100], [1, 100]]
[profiles.nox_in_mg_nm3]
points = [[0, 300], [1, 300]]
[[events]]
kind = "nox_step"
at_h = 0.2
duration_h = 0.5
frac = 0.5
"""


def test_scr_inlet_nox_reading_has_the_analyzers_dead_time_and_lag():
    from hil_tests.plants.base import load_params
    cls = plant_class("scr")
    with tempfile.TemporaryDirectory() as tmp:
        sc = load_scenario(_write(tmp, "s", SCR_STEP), cls.SPEC, 1.0)
    params = load_params("scr", cls.PARAMS)
    params.update(nox_in_noise=0.0, nox_in_drift_per_day=0.0, nox_in_blowback_every_h=0.0,
                  nox_in_cal_every_h=0.0)
    pl = cls("scr", sc, params)
    dead, lag = params["nox_in_dead_time_s"], params["nox_in_lag_s"]
    t0 = 0.2 * 3600
    at, truth = {}, {}
    for k in range(int(0.5 * 3600)):
        pl.step(float(k), 1.0)
        at[k + 1] = pl.measure()["scr"]["nox_in_mg_nm3"]
        truth[k + 1] = pl.nox_in
    assert truth[int(t0) + 2] == pytest.approx(450.0)
    assert at[int(t0 + dead - 3)] == pytest.approx(300.0, rel=0.01)
    frac = (at[int(t0 + dead + lag)] - 300.0) / 150.0
    assert 0.5 < frac < 0.75
    assert at[int(t0 + dead + 6 * lag)] == pytest.approx(450.0, rel=0.01)
