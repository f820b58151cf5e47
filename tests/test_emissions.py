"""Emission accounting as a CEMS data system does it (controller/accounting.py
EmissionHours and Period; docs/emissions.md): minute values at the reference
O2, clock-aligned hours and half hours valid with >= 75 % valid minutes,
blow-back and calibration minutes excluded (not valid, and not a fault),
calendar days from the valid hours; and the live service's accounting
(controller/runtime/accounting.py) gives the KPI frame's figures on the same
signals."""

import math
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from controller.accounting import EmissionHours, KpiFrame, Period, at_6pct_o2
from controller.loops import strategy_class
from controller.runtime.accounting import LiveAccounting
from hil_tests.plants import plant_class
from hil_tests.scenario import load_scenario


def feed(em, t0, t1, c, o2=6.0, excluded=False, dt=10.0):
    """c (a number, None, or a function of t) held in dt steps over [t0, t1)."""
    t = t0
    while t < t1 - 1e-9:
        step = min(dt, t1 - t)
        em.add(t, step, c(t) if callable(c) else c, o2, excluded)
        t += step
    return t1


def test_hour_with_fewer_than_75_percent_valid_minutes_is_invalid():
    em = EmissionHours(50.0)
    feed(em, 0, 45 * 60, 40.0)            # hour 0: 45 valid minutes (75 %)
    feed(em, 45 * 60, 3600, None)
    feed(em, 3600, 3600 + 44 * 60, 100.0)  # hour 1: 44 valid minutes, far above the limit
    feed(em, 3600 + 44 * 60, 7200, None)
    feed(em, 7200, 7260, 1.0)             # closes hour 1
    h0, h1 = em.closed
    assert h0.valid and h0.mean == pytest.approx(40.0) and h0.valid_min == 45
    assert not h1.valid and h1.mean is None and h1.valid_min == 44
    assert em.invalid_hours() == 1
    # The invalid hour is reported, never averaged in, and is no exceedance.
    assert em.hours() == [pytest.approx(40.0)]
    assert em.exceed_hours() == 0
    s = em.summary()
    assert s["hours_valid"] == 1 and s["hours_invalid"] == 1 and s["exceed_hours"] == 0


def test_validity_fraction_is_a_setting():
    em = EmissionHours(50.0, min_valid_frac=0.9)
    feed(em, 0, 50 * 60, 40.0)
    feed(em, 50 * 60, 3600 + 60, None)
    assert not em.closed[0].valid          # 50 of 60 < 90 %
    with pytest.raises(ValueError):
        EmissionHours(50.0, min_valid_frac=0.0)


def test_blowback_and_calibration_minutes_are_excluded_not_faulted():
    em = EmissionHours(50.0)
    # Hour 0: 10 min blow-back with the analyzer's held value 999 (must not count).
    feed(em, 0, 20 * 60, 30.0)
    feed(em, 20 * 60, 30 * 60, 999.0, excluded=True)
    feed(em, 30 * 60, 3600, 30.0)
    # Hour 1: a 16 min calibration: 44 valid minutes, invalid, counted as excluded.
    feed(em, 3600, 3600 + 16 * 60, 999.0, excluded=True)
    feed(em, 3600 + 16 * 60, 7200, 30.0)
    # Hour 2: a 16 min analyzer fault (no value): invalid, nothing excluded.
    feed(em, 7200, 7200 + 16 * 60, None)
    feed(em, 7200 + 16 * 60, 10800, 30.0)
    feed(em, 10800, 10860, 30.0)
    h0, h1, h2 = em.closed
    assert h0.valid and h0.mean == pytest.approx(30.0)
    assert (h0.valid_min, h0.excluded_min) == (50, 10)
    assert not h1.valid and (h1.valid_min, h1.excluded_min) == (44, 16)
    assert not h2.valid and (h2.valid_min, h2.excluded_min) == (44, 0)
    assert em.summary()["minutes_excluded"] == 26


def test_reference_oxygen_correction():
    assert at_6pct_o2(100.0, 11.0) == pytest.approx(150.0)   # (21 - 6) / (21 - 11)
    assert at_6pct_o2(100.0, 6.0) == pytest.approx(100.0)
    assert at_6pct_o2(100.0, 3.0, o2_ref_pct=3.0) == pytest.approx(100.0)
    em = EmissionHours(200.0)
    feed(em, 0, 3600, 100.0, o2=11.0)
    feed(em, 3600, 3660, 100.0, o2=11.0)
    assert em.closed[0].mean == pytest.approx(150.0)
    # Another reference (a gas turbine's 15 %): the same reading counts 60.
    em15 = EmissionHours(200.0, o2_ref_pct=15.0)
    feed(em15, 0, 3660, 100.0, o2=11.0)
    assert em15.closed[0].mean == pytest.approx(60.0)
    # No value: NaN, inf, None, O2 at or above 21 %.
    for c, o2 in ((math.nan, 6.0), (math.inf, 6.0), (None, 6.0), (50.0, 21.0), (50.0, math.nan)):
        assert EmissionHours(50.0).add(0.0, 1.0, c, o2) is None


def test_half_hour_hour_and_daily_means_are_means_of_the_minute_values():
    em = EmissionHours(1000.0)
    # Minute m of the day reads (m mod 60) + 10 x hour (mg/Nm3 at 6 % O2), piecewise
    # constant in 10 s steps: each minute's value is exact.
    feed(em, 0, 86400 + 60, lambda t: (int(t // 60) % 60) + 10.0 * int(t // 3600) % 240)
    halves = [p.mean for p in em.half_hours[:48]]
    hours = [p.mean for p in em.closed[:24]]
    for h in range(24):
        base = 10.0 * h
        assert halves[2 * h] == pytest.approx(base + 14.5)      # mean of 0..29
        assert halves[2 * h + 1] == pytest.approx(base + 44.5)  # mean of 30..59
        assert hours[h] == pytest.approx(base + 29.5)
    day = em.days()[0]
    assert day.start_s == 0.0 and day.valid
    assert day.mean == pytest.approx(sum(hours) / 24)
    assert em.summary()["halfhour_max"] == pytest.approx(230 + 44.5)


def test_a_day_with_more_than_three_invalid_hours_is_invalid():
    em = EmissionHours(50.0)
    # Four hours with no value in day 0; day 1 has three.
    feed(em, 0, 4 * 3600, None, dt=60.0)
    feed(em, 4 * 3600, 86400, 20.0, dt=60.0)
    feed(em, 86400, 86400 + 3 * 3600, None, dt=60.0)
    feed(em, 86400 + 3 * 3600, 2 * 86400 + 60, 20.0, dt=60.0)
    d0, d1 = em.days()[:2]
    assert not d0.valid and d0.valid_min == 20
    assert d1.valid and d1.mean == pytest.approx(20.0) and d1.valid_min == 21


def test_periods_are_clock_aligned_whatever_the_start_and_step():
    em = EmissionHours(50.0)
    # Start at 00:30:17 with 7 s samples: the first (partial) hour is [0, 3600)
    # and invalid (30 minutes: 00:30 is 43 s covered, over half), the next ones
    # start on the hour.
    feed(em, 1817.0, 3 * 3600 + 100, 25.0, dt=7.0)
    starts = [p.start_s for p in em.closed]
    assert starts == [0.0, 3600.0, 7200.0]
    assert not em.closed[0].valid and em.closed[0].valid_min == 30
    assert all(p.valid and p.mean == pytest.approx(25.0) for p in em.closed[1:])
    assert [p.start_s for p in em.half_hours][:3] == [1800.0, 3600.0, 5400.0]
    assert isinstance(em.closed[1], Period) and em.closed[1].minutes == 60


def test_a_minute_needs_half_of_it_covered():
    em = EmissionHours(50.0)
    # Each minute: 25 s of value 40, 35 s of nothing -> no valid minute at all.
    for m in range(61):
        em.add(m * 60.0, 25.0, 40.0, 6.0)
        em.add(m * 60.0 + 25.0, 35.0, None, 6.0)
    assert em.closed[0].valid_min == 0 and not em.closed[0].valid


SCR_CEMS = """
[scenario]
name = "scr_cems"
plant = "scr"
hours = 6.0
seed = 11
[profiles.load_pct]
points = [[0, 70], [2, 100], [6, 80]]
noise = 0.005
[profiles.nox_in_mg_nm3]
points = [[0, 300], [6, 360]]
noise = 0.02
[[events]]
kind = "analyzer_blowback"
at_h = 0.5
duration_h = 0.0667
every_h = 1.0
[[events]]
kind = "wire_break"
at_h = 2.1
duration_h = 0.3
"""


class _Devices(dict):
    pass


def test_live_accounting_matches_the_kpi_frame():
    """The service's LiveAccounting and the simulator's KpiFrame, fed the same
    SCR stack signals (with blow-back every hour and a 18 min wire break), give
    the same hourly periods, invalid hours, excluded minutes and exceedances:
    one implementation, the same rules. On what the analyzer reads (lag,
    noise) instead of the truth, the hourly means agree within a few mg."""
    cls = plant_class("scr")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scr_cems.toml"
        path.write_text(SCR_CEMS)
        sc = load_scenario(str(path), cls.SPEC)
    strat = strategy_class("scr", "optimized")()
    pl = cls("scr", sc)
    points = list(pl.measure()["scr"])
    devices = {"scr": SimpleNamespace(points=points)}
    cfg = {"grid_kg_co2_per_kwh": 0.581, "nox_limit_mg_nm3": 50.0, "o2_ref_pct": 6.0,
           "nox_point": ("scr", "nox_out_mg_nm3"), "nox_o2_point": ("scr", "o2_pct")}
    live_truth = LiveAccounting(cfg, devices)
    live_meas = LiveAccounting(cfg, devices)
    kpi = KpiFrame("scr")
    t, dt = 0.0, sc.step_s
    for _ in range(int(sc.hours * 3600 / dt)):
        cmds = strat.run(t, pl.measure())
        for dev, pts in cmds.items():
            for k, v in pts.items():
                pl.actuate(dev, k, v)
        pl.step(t, dt)
        tr = pl.truth()
        kpi.add(t, dt, tr, cmds)
        m = pl.measure()["scr"]
        # What the service's process image would hold: the analyzer's status
        # discretes with the truth's concentration and O2 ...
        truth_vals = dict(m, nox_out_mg_nm3=tr["nox_out_mg_nm3"], o2_pct=tr["o2_pct"])
        live_truth.add(t + dt, dt, lambda d, p: truth_vals.get(p))
        # ... and what the analyzers really read (NaN is no value in the image).
        meas_vals = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                     for k, v in m.items()}
        live_meas.add(t + dt, dt, lambda d, p: meas_vals.get(p))
        t += dt
    ref = kpi.hourly
    got = live_truth.em["nox"][2]
    assert len(ref.closed) == len(got.closed) == 6
    for a, b in zip(ref.closed, got.closed):
        assert (a.start_s, a.valid_min, a.excluded_min) == (b.start_s, b.valid_min, b.excluded_min)
        assert (a.mean is None) == (b.mean is None)
        if a.mean is not None:
            assert b.mean == pytest.approx(a.mean, rel=1e-9)
    # The wire break (2.1-2.4 h) makes hour 2 invalid; blow-back is excluded.
    assert not ref.closed[2].valid
    assert all(p.excluded_min >= 4 for p in ref.closed)
    k = live_truth.kpis()
    r = kpi.result()
    assert k["nox_hours_invalid"] == r["nox_hours_invalid"] == 1
    assert k["nox_exceed_hours"] == r["nox_exceed_hours"]
    # On the measured signals: same validity, means within the analyzer's error.
    meas = live_meas.em["nox"][2]
    assert [p.valid for p in meas.closed] == [p.valid for p in ref.closed]
    for a, b in zip(ref.closed, meas.closed):
        if a.mean is not None:
            assert abs(b.mean - a.mean) < 3.0
