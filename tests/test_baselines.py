"""The best-practice baselines (docs/models.md, "Baselines") beside the typical ones."""

import pytest

from controller.loops import STRATEGIES, strategy_class
from controller.loops.desox import LoadStagingBaseline
from hil_tests import sim


def test_baseline_is_best_practice_and_every_plant_has_all_four():
    for plant, names in STRATEGIES.items():
        assert {"typical", "best-practice", "baseline", "optimized"} <= set(names)
        assert strategy_class(plant, "baseline") is strategy_class(plant, "best-practice")
    with pytest.raises(ValueError, match="unknown strategy"):
        strategy_class("scr", "best_practice")


def test_fgd_table_stages_pumps_by_load_and_so2():
    b = LoadStagingBaseline()
    assert b.table(2000.0, 50.0) == 3 and b.table(2000.0, 100.0) == 5
    assert b.table(1200.0, 100.0) == 4 and b.table(3500.0, 50.0) == 5
    assert b.table(float("nan"), 50.0) == 5   # inlet unknown: every pump


def test_best_practice_compressor_cascade_holds_minimum_below_typical_energy():
    # 00:00-16:00 of the standard day: the tighter, lower bands save energy
    # against the typical cascade and still hold the users' minimum.
    typ = sim.run("compressor", "typical", hours=16)
    bp = sim.run("compressor", "best-practice", hours=16)
    assert bp["energy_kwh"] < typ["energy_kwh"]
    assert bp["pressure_min_bar"] >= 6.0 and bp["time_below_min_s"] == 0


def test_best_practice_scr_holds_every_hour_steadier_than_typical():
    typ = sim.run("scr", "typical", hours=8)
    bp = sim.run("scr", "best-practice", hours=8)
    assert bp["nox_exceed_hours"] == 0 and bp["nox_hourly_max_mg_nm3"] <= 50.0
    assert bp["nox_std_mg_nm3"] < typ["nox_std_mg_nm3"]


def test_cost_and_total_co2_add_up_and_bad_prices_are_refused(tmp_path):
    r = sim.run("fgd", "optimized", hours=0.5)
    d = sim.load_prices()
    co2 = r["energy_kwh"] * d["co2"]["grid_kg_per_kwh"] + r["co2_process_kg"]
    assert r["co2_total_kg"] == pytest.approx(co2, rel=1e-6)
    assert r["co2_process_kg"] > 0   # limestone: one CO2 per SO2 removed
    cost = r["energy_kwh"] * d["prices"]["electricity_per_kwh"] \
        + r["limestone_kg"] * d["prices"]["limestone_per_kg"]
    assert r["cost"] == pytest.approx(cost, abs=0.01)
    bad = tmp_path / "p.toml"
    bad.write_text("[prices]\nelectricity_per_kwh = -1\nnh3_per_kg = 1\nlimestone_per_kg = 1\n"
                   "[co2]\ngrid_kg_per_kwh = 1\nnh3_kg_per_kg = 1\n")
    with pytest.raises(ValueError, match="electricity_per_kwh"):
        sim.load_prices(bad)


def test_readme_headline_agrees_with_results_md():
    # The README's headline is computed from docs/results.md (python tools/results.py).
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    res = (root / "docs" / "results.md").read_text()
    m = re.search(r"Headline: ([\d.]+) % less electrical energy than best-practice control "
                  r"\((\d+) -> (\d+) kWh; ([\d.]+) % less than typical\), cost ([\d.-]+) % lower, "
                  r"total CO2 ([\d.-]+) % lower", res)
    assert m, "docs/results.md has no headline line"
    readme = " ".join((root / "README.md").read_text().split())
    pct, kb, ko, pt, cost, co2 = m.groups()
    want = ["%s %% less electrical energy than best-practice control (%s -> %s kWh)"
            % (pct, "{:,}".format(int(kb)), "{:,}".format(int(ko))),
            "%s %% less than typical control" % pt, "cost %s %% lower" % cost,
            "total CO2 %s %% lower" % co2]
    for w in want:
        assert w in readme, w
