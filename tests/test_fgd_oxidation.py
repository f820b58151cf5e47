"""FGD forced oxidation (docs/models.md section 4, "Forced oxidation"): the
sulphite oxidised follows X = 1 - exp(-k SR) with SR from the blower's air and
the SO2 absorbed; what is not oxidised lowers the gypsum's purity and raises its
sulphite (KPIs with limits); the optimised strategy's blower cut is bounded by
a minimum O2 ratio and holds the gypsum in specification, also on a plant whose
oxidation rate constant is 20 % below the nominal one."""

import math

import pytest

from controller.accounting import KpiFrame
from controller.loops import strategy_class
from controller.loops.desox import LoadStagingBaseline, PumpStagingStrategy
from hil_tests.plants import plant_class
from hil_tests.plants.base import load_params
from hil_tests.plants.fgd import oxidation_fraction, solids_quality
from hil_tests.scenario import load_scenario


def _run(strat, scenario="fgd_standard", hours=None, **over):
    cls = plant_class("fgd")
    sc = load_scenario(scenario, cls.SPEC, hours)
    params = load_params("fgd", cls.PARAMS)
    params.update(over)
    pl = cls("fgd", sc, params)
    kpi = KpiFrame("fgd")
    t, dt = 0.0, sc.step_s
    cmds = {}
    rows = []
    for k in range(int(round(sc.hours * 3600 / dt))):
        cmds = strat.run(t, pl.measure())
        for dev, pts in cmds.items():
            for name, v in pts.items():
                pl.actuate(dev, name, v)
        pl.step(t, dt)
        tr = pl.truth()
        kpi.add(t, dt, tr, cmds)
        if k % 60 == 0:
            rows.append((t, tr, dict(cmds["fgd"]), pl.air_nm3h))
        t += dt
    return pl, kpi.result(), rows


class _Blower(LoadStagingBaseline):
    """Best-practice pumps and pH, the blower at a fixed command."""

    def __init__(self, pct):
        super().__init__()
        self.pct = pct

    def run(self, t_s, snap):
        out = super().run(t_s, snap)
        out["fgd"]["blower_cmd_pct"] = self.pct
        return out


@pytest.mark.parametrize("sr, k, x", [(0.0, 2.1, 0.0), (1.0, 2.1, 0.8775), (2.5, 2.1, 0.99475),
                                      (3.0, 1.68, 0.99353)])
def test_oxidation_fraction_is_the_correlation(sr, k, x):
    assert oxidation_fraction(sr, k) == pytest.approx(x, abs=5e-5)


def test_solids_quality_from_the_sulphite_fraction():
    g, s = solids_quality(0.0, 0.96)
    assert g == pytest.approx(0.96) and s == 0.0
    # 5 mol % sulphite: 0.05 x 129.15 / (0.05 x 129.15 + 0.95 x 172.17) of the salts.
    g, s = solids_quality(0.05, 0.96)
    assert s == pytest.approx(0.96 * 6.4575 / (6.4575 + 163.5615), rel=1e-9)
    assert g + s == pytest.approx(0.96)


def test_plant_oxidation_follows_the_air_and_the_so2_absorbed():
    """The plant's SR and X, recomputed from its air and absorbed SO2."""
    pl, res, rows = _run(_Blower(60.0), hours=3.0)
    k = pl.p["ox_k"]
    checked = 0
    for t, tr, cmd, air in rows[10:]:
        absorbed = tr["so2_absorbed_kmol_s"]
        sr = air * 0.2095 / 22.414 / 3600.0 / (0.5 * absorbed)
        assert tr["oxidation_sr"] == pytest.approx(sr, rel=1e-9)
        assert tr["oxidation_frac"] == pytest.approx(1 - math.exp(-k * sr), rel=1e-9)
        checked += 1
    assert checked > 100
    assert air == pytest.approx(0.6 * pl.p["blower_air_max_nm3h"])


def test_no_oxidation_air_spoils_the_gypsum_over_hours():
    """Blower off: nothing is oxidised; the tank's solids fill with sulphite at
    the solids residence time; purity falls below 90 %, the KPI says so."""
    pl, res, rows = _run(_Blower(0.0), hours=8.0)
    assert res["oxidation_min_frac"] == 0.0
    assert res["gypsum_purity_min_pct"] < 90.0
    assert res["sulfite_max_pct"] > 5.0
    assert res["gypsum_offspec_h"] > 4.0
    # Not at once: the solids inventory answers over hours (solids_tau_h).
    first_h = [tr["gypsum_purity"] for t, tr, _, _ in rows if t < 1800]
    assert min(first_h) > 0.93


def test_a_blower_cut_below_the_minimum_ratio_is_counted():
    """The old free cut (40 % all day) on the standard day: at full load and
    2800 mg/Nm3 SR falls to ~1.2; the sulphite limit is broken and counted."""
    pl, res, _ = _run(_Blower(40.0))
    assert res["oxidation_min_frac"] < 0.95
    assert res["sulfite_max_pct"] > 0.5
    assert res["gypsum_offspec_h"] > 1.0


@pytest.mark.parametrize("k_factor", [1.0, 0.8])
def test_optimized_blower_holds_the_gypsum_in_specification(k_factor):
    nominal = load_params("fgd", plant_class("fgd").PARAMS)["ox_k"]
    pl, res, rows = _run(PumpStagingStrategy(), ox_k=nominal * k_factor)
    assert res["gypsum_offspec_h"] == 0.0
    assert res["sulfite_max_pct"] <= 0.5
    assert res["gypsum_purity_min_pct"] >= 90.0
    # The O2 ratio the strategy aims at: SR_MIN wherever the blower is between
    # its floor and full output; on the measured inlet (CEMS lag, blow-back
    # hold, drift) it dips transiently (about 2.9 at the noon coal switch). At
    # 100 % the blower itself is the limit (full load at 2800 mg/Nm3 is beyond
    # the design ratio, for the baselines too).
    srs = [tr["oxidation_sr"] for t, tr, cmd, _ in rows[5:]
           if PumpStagingStrategy.BLOWER_MIN_PCT + 1 < cmd["blower_cmd_pct"] < 99.5]
    assert len(srs) > 100, "the blower never left its floor"
    srs.sort()
    assert srs[len(srs) // 2] >= 0.98 * PumpStagingStrategy.SR_MIN
    assert srs[0] >= 0.95 * PumpStagingStrategy.SR_MIN
    # And it still saves blower energy against the full-output baseline.
    assert res["energy_kwh_by_drive"]["blower"] < 0.8 * 24 * pl.p["blower_kw_max"]
    assert res["so2_exceed_hours"] == 0


def test_blower_command_from_the_ratio():
    s = PumpStagingStrategy({"sr_min": 2.0, "blower_air_max_nm3h": 10000.0,
                             "blower_min_pct": 30.0})
    so2 = 0.01   # kmol/s absorbed
    air = 2.0 * 0.5 * so2 / 0.2095 * 22.414 * 3600.0
    assert s.blower_pct(so2) == pytest.approx(100 * air / 10000.0)
    assert s.blower_pct(1e-6) == 30.0
    assert s.blower_pct(1.0) == 100.0
    assert strategy_class("fgd", "optimized") is PumpStagingStrategy
