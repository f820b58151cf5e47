"""`greenedge sim --family`: seeded draws within the spread, the strategy and its
baseline on the same drawn plant, the family's aggregates, and a short family
that CI runs in well under a minute (hil_tests/family.py)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hil_tests import family, sim

ROOT = Path(__file__).resolve().parent.parent


def _u(kind, nom, v):
    """The relative deviation a drawn value stands for (family.draw's transforms)."""
    if kind == "rel":
        return v / nom - 1.0
    if kind == "excess":
        return (v - 1.0) / (nom - 1.0) - 1.0
    return (1.0 - v) / (1.0 - nom) - 1.0


@pytest.mark.parametrize("plant", family.PLANT_ORDER)
def test_draw_is_seeded_and_within_spread(plant):
    nom = family.nominal(plant)
    spec = sim.plant_class(plant).PARAMS
    a = [family.draw(plant, i, 0.2, 7) for i in range(8)]
    assert a == [family.draw(plant, i, 0.2, 7) for i in range(8)]      # seeded
    assert a != [family.draw(plant, i, 0.2, 8) for i in range(8)]      # by the seed
    assert a[0] != a[1]                                                 # members differ
    assert set(a[0]) == set(family.PHYSICS[plant])
    us = []
    for d in a:
        for k, v in d.items():
            kind = family.PHYSICS[plant][k]
            _, lo, hi = spec[k]
            if nom[k] == 0 or (kind != "rel" and nom[k] == 1):
                assert v == nom[k] or v in (lo, hi), k      # nothing to scale
                continue
            if v in (lo, hi):
                continue                                      # clipped to its valid range
            u = _u(kind, nom[k], v)
            assert -0.2 - 1e-9 <= u <= 0.2 + 1e-9, (k, v, nom[k])
            us.append(u)
    # the draw uses the spread, both ways (not a no-op, not a one-sided shift)
    assert max(us) > 0.15 and min(us) < -0.15
    assert abs(float(np.mean(us))) < 0.05
    assert family.draw(plant, 0, 0.0, 7) == {k: nom[k] for k in family.PHYSICS[plant]}


def test_nominal_values_are_the_params_files():
    """The draw scales the plant's own params TOML values (e.g. the SCR dead time)."""
    assert family.nominal("scr")["analyzer_dead_time_s"] == 120.0
    assert family.nominal("pump")["static_fraction"] == 0.4
    assert family.nominal("fgd")["ntu0"] == 4.42


def test_strategy_and_baseline_run_on_the_same_drawn_plant(monkeypatch):
    built = []
    real = sim.plant_class

    def spy(name):
        cls = real(name)

        class Spy(cls):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                built.append(dict(self.p))
        return Spy
    monkeypatch.setattr(sim, "plant_class", spy)
    rep = family.run_family(2, 0.2, 11, plants=("fgd",), hours=0.25)
    mem = rep["plants"]["fgd"]["members"]
    assert len(built) == 4                        # 2 members x (strategy, baseline)
    for i, m in enumerate(mem):
        s, b = built[2 * i], built[2 * i + 1]
        assert s == b                             # the same plant for both
        for k, v in m["params"].items():
            assert s[k] == v                      # and it is the drawn one
    assert built[0] != built[2]                   # another member, another plant
    assert mem[0]["params"] == family.draw("fgd", 0, 0.2, 11)


def test_spread_zero_is_the_nominal_plant_and_a_drawn_plant_differs():
    nomrun = sim.run("pump", "optimized", hours=0.5)
    rep = family.run_family(1, 0.0, 3, plants=("pump",), hours=0.5)
    assert rep["plants"]["pump"]["members"][0]["strategy"]["energy_kwh"] == nomrun["energy_kwh"]
    rep2 = family.run_family(1, 0.2, 3, plants=("pump",), hours=0.5)
    assert rep2["plants"]["pump"]["members"][0]["strategy"]["energy_kwh"] != nomrun["energy_kwh"]


def test_aggregates():
    def m(i, saving, exc, purity, base_exc=0):
        return {"i": i, "saving_pct": saving,
                "strategy": {"so2_exceed_hours": exc, "so2_hourly_max_mg_nm3": 20.0 + i,
                             "gypsum_purity_min_pct": purity, "sulfite_max_pct": 0.1 * i,
                             "ph_in_band_frac": 1.0 - 0.01 * i, "so2_hours_invalid": 0},
                "baseline": {"so2_exceed_hours": base_exc, "so2_hourly_max_mg_nm3": 15.0,
                             "gypsum_purity_min_pct": 95.0, "sulfite_max_pct": 0.2,
                             "ph_in_band_frac": 1.0, "so2_hours_invalid": 1}}
    members = [m(0, 30.0, 0, 95.0), m(1, 10.0, 2, 91.0), m(2, 50.0, 1, 93.0, 3),
               m(3, 20.0, 0, 96.0), m(4, 40.0, 0, 89.0)]
    f = family.summarise("fgd", members)
    assert f["saving_pct"] == {"worst": 10.0, "p10": 14.0, "p50": 30.0, "p90": 46.0, "mean": 30.0}
    assert f["worst_member"] == 1
    assert f["exceed_hours"] == {"strategy": 3, "baseline": 3}
    w = f["worst"]["strategy"]
    assert w["so2_hourly_max_mg_nm3"] == 24.0 and w["gypsum_purity_min_pct"] == 89.0
    assert w["sulfite_max_pct"] == pytest.approx(0.4) and w["ph_in_band_frac"] == 0.96
    assert f["worst"]["baseline"]["so2_hours_invalid"] == 5
    assert f["aims"] == {"0 SO2 exceedance hours (family)": False,
                         ">= 15 % less pumps + blower (median)": True,
                         "gypsum purity >= 90 % (worst plant)": False,
                         "sulphite <= 0.5 % (worst plant)": True}


def test_short_family_from_the_cli_in_ci_time():
    """N = 3, 2 h, every plant: the JSON a user gets, its aggregates from its
    members, in < 60 s (about 10 s here, on a loaded 2-core machine)."""
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "controller.cli", "sim", "--family", "3",
                          "--spread", "0.2", "--seed", "5", "--hours", "2", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    wall = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert wall < 60.0, wall
    assert rep["family"]["n"] == 3 and rep["family"]["spread"] == 0.2
    assert set(rep["plants"]) == set(family.PLANT_ORDER)
    for plant, pr in rep["plants"].items():
        mem = pr["members"]
        assert [x["i"] for x in mem] == [0, 1, 2] and all(x["hours"] == 2 for x in mem)
        assert mem[1]["params"] == family.draw(plant, 1, 0.2, 5)
        key = family.SAVING[plant]
        for x in mem:
            assert x["saving_pct"] == pytest.approx(
                100 * (1 - x["strategy"][key] / x["baseline"][key]), abs=1e-3)
        assert pr["family"] == json.loads(json.dumps(family.summarise(plant, mem)))
        # what the strategies promise: they save on every drawn plant here
        assert pr["family"]["saving_pct"]["worst"] > 0, plant
    assert rep["plants"]["scr"]["family"]["exceed_hours"]["strategy"] == 0
    assert rep["plants"]["fgd"]["family"]["exceed_hours"]["strategy"] == 0


def test_cli_needs_a_plant_or_a_family():
    out = subprocess.run([sys.executable, "-m", "controller.cli", "sim"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--plant is required" in out.stderr
    out = subprocess.run([sys.executable, "-m", "controller.cli", "sim", "--family", "2",
                          "--strategy", "baseline"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "best-practice" in out.stderr


def test_removal_gain_learns_the_plant_and_is_bounded():
    from controller.loops.identify import RemovalGain
    g = RemovalGain()
    t = 0.0
    ntu_true, ntu_model = 4.4, 4.0                     # the plant removes 10 % more NTU
    out = 2000.0 * np.exp(-ntu_true)
    for _ in range(int(590 / 10)):                     # not settled after the pump change
        g.update(t, 2000.0, out, 3, ntu_model)
        t += 10.0
    assert g.samples == 0 and g.gain == 1.0
    for _ in range(int(4 * 3600 / 10)):
        g.update(t, 2000.0, out, 3, ntu_model)
        t += 10.0
    assert g.estimate == pytest.approx(1.1, abs=0.01) and g.gain == pytest.approx(1.1, abs=0.01)
    g.update(t, float("nan"), out, 3, ntu_model)       # a failed analyzer: held
    assert g.estimate == pytest.approx(1.1, abs=0.01)
    g.update(t + 10, 2000.0, out, 4, ntu_model)         # a pump change: settle again
    g.update(t + 20, 2000.0, out * 50, 4, ntu_model)    # (a sample that would pull it down)
    assert g.estimate == pytest.approx(1.1, abs=0.01)
    worse = RemovalGain()
    for k in range(int(4 * 3600 / 10)):
        worse.update(k * 10.0, 2000.0, 2000.0 * np.exp(-3.0), 3, 4.0)
    assert worse.estimate == pytest.approx(0.75, abs=0.01) and worse.gain == 1.0   # left to the trim
    better = RemovalGain()
    for k in range(int(4 * 3600 / 10)):
        better.update(k * 10.0, 2000.0, 2000.0 * np.exp(-6.0), 3, 4.0)
    assert better.gain == RemovalGain.USE_HI                                        # bounded


def test_fgd_strategy_adapts_to_a_plant_that_removes_more(monkeypatch):
    """A drawn FGD whose correlation gives 20 % more NTU than the host's: the
    optimiser learns it from its analyzers and runs fewer pumps than with its
    nominal correlation, with no exceedance hour; the plant's own parameter is
    never read (the strategy sees only measure())."""
    from controller.loops import identify
    seen = []
    real = identify.RemovalGain.update

    def spy(self, *a):
        seen.append(self)
        return real(self, *a)
    monkeypatch.setattr(identify.RemovalGain, "update", spy)
    better = {"ntu0": 4.42 * 1.2}
    a = sim.run("fgd", "optimized", hours=8, plant_params=better)
    est = seen[-1].estimate
    monkeypatch.setattr(identify.RemovalGain, "USE_HI", 1.0)     # the nominal correlation only
    b = sim.run("fgd", "optimized", hours=8, plant_params=better)
    assert 1.1 < est < 1.3, est
    assert a["recirc_pump_kwh"] < 0.95 * b["recirc_pump_kwh"], (a["recirc_pump_kwh"],
                                                                 b["recirc_pump_kwh"])
    assert a["so2_exceed_hours"] == 0 and a["so2_hourly_max_mg_nm3"] < 35.0


def test_readme_family_headline_agrees_with_results_md_and_the_family_report():
    """docs/results.md's family headline is computed from docs/family.json (the
    family run tools/results.py made), and the README's headline says the same."""
    import re
    sys.path.insert(0, str(ROOT / "tools"))
    import results
    res = (ROOT / "docs" / "results.md").read_text()
    m = re.search(r"Family headline: on (\d+) plants drawn within \+-(\d+) % \(seed (\d+)\), "
                  r"([-\d.]+) % less electricity than best-practice at the median plant, "
                  r"([-\d.]+) % on the worst, (\d+) exceedance hours over the family "
                  r"\(best-practice (\d+)\); cost ([-\d.]+) % and total CO2 ([-\d.]+) % lower at "
                  r"the median\.", res)
    assert m, "docs/results.md has no family headline"
    n, spread, seed, p50, worst, exc, bexc, cost, co2 = m.groups()
    fam = json.loads((ROOT / "docs" / "family.json").read_text())
    assert (fam["family"]["n"], round(100 * fam["family"]["spread"]), fam["family"]["seed"]) \
        == (int(n), int(spread), int(seed))
    site = results.family_site(fam)
    assert "%.1f" % site["energy_kwh"]["p50"] == p50
    assert "%.1f" % site["energy_kwh"]["worst"] == worst
    assert sum(fam["plants"][p]["family"]["exceed_hours"]["strategy"] for p in ("scr", "fgd")) \
        == int(exc)
    assert sum(fam["plants"][p]["family"]["exceed_hours"]["baseline"] for p in ("scr", "fgd")) \
        == int(bexc)
    assert ("%.1f" % site["cost"]["p50"], "%.1f" % site["co2_total_kg"]["p50"]) == (cost, co2)
    for p, pr in fam["plants"].items():     # the stored aggregates are its members'
        assert pr["family"] == json.loads(json.dumps(family.summarise(p, pr["members"])))
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "On a family of %s plants whose physics is drawn within +-%s %%" % (n, spread) in readme
    assert ("%s %% less electricity than best-practice at the median plant, %s %% on the worst, "
            "%s exceedance hours over the family (best-practice %s), cost %s %% and total CO2 %s %% "
            "lower at the median" % (p50, worst, exc, bexc, cost, co2)) in readme
