"""What the fault campaign found in the SCR strategy (controller/loops/denox.py),
each case run as the campaign runs it (hil_tests/faults.py: the standard day's
first 3 h, the fault from 1 h for 1 h): the NH3 valve never doses above the
molar-ratio cap (1.2 x the true inlet NOx, molar) nor above 1.1 x the
fault-free run's peak, whatever the instrument does."""

import pytest

from hil_tests import faults


@pytest.fixture(scope="module")
def reference():
    rec = faults.run_case("scr", "optimized", None, None)
    assert rec["unsafe"] == {} and rec["crash"] is None, rec
    return rec


@pytest.mark.parametrize("signal,mode,why", [
    # 4 mA on the inlet analyzer (0 mg/Nm3, NE43-good) was taken as credible:
    # the trim dosed alone and, the analyzer back, the feedforward never
    # recovered (inlet level held at ~0): up to 149 kg/h for 47 min (peak 120).
    ("nox_in_mg_nm3", "low", "bottom of the inlet span"),
    # 20 mA on the outlet analyzer (5,000 mg/Nm3) and 4 mA (0) were trusted by the trim.
    ("nox_out_mg_nm3", "high", "top of the outlet span"),
    ("nox_out_mg_nm3", "low", "bottom of the outlet span"),
    # An outlet analyzer reading 50 % high drove the trim to the 1.1 x need
    # ceiling for the whole hour (143.7 kg/h).
    ("nox_out_mg_nm3", "value", "outlet reading high, plausibly"),
    ("nox_out_mg_nm3", "drift", "outlet drifting up"),
    # Dosing off for an hour (a failed temperature reading): the trim wound up
    # meanwhile and overdosed at the restart (139.9 kg/h for 4.5 min).
    ("flue_gas_temp_c", "low", "temperature at 4 mA: dosing off"),
    ("flue_gas_temp_c", "wire_break", "temperature lost: dosing off"),
    # A flow transmitter reading 50 % high raised the NH3 ceiling with it
    # (molar ratio 1.25 for 5.5 min): the ceiling's flow is held to the load's.
    ("flue_gas_flow_nm3h", "value", "flow reading high, plausibly"),
    ("flue_gas_flow_nm3h", "noise", "flow transmitter noisy"),
    # The inlet analyzer reading plausibly wrong: the feedforward and the
    # ceiling followed it (50 % high: molar ratio 1.46 for 429 s, 174 kg/h;
    # drifting up 500 mg/Nm3/h: 152 kg/h for 40 min; noise of std 100 mg/Nm3:
    # ratio 1.40 for 270 s; fault-free peak 120 kg/h).
    ("nox_in_mg_nm3", "value", "inlet reading 50 % high, plausibly"),
    ("nox_in_mg_nm3", "drift", "inlet drifting up"),
    ("nox_in_mg_nm3", "noise", "inlet analyzer noisy"),
])
def test_an_scr_instrument_fault_never_overdoses_nh3(reference, signal, mode, why):
    case = (None, signal, mode, faults.fault_value("scr", None, signal, mode, reference["_means"]))
    rec = faults.run_case("scr", "optimized", case, reference["peak_nh3_kgh"])
    assert rec["crash"] is None, rec["crash"]
    assert rec["unsafe"] == {}, (why, rec["unsafe"])
    # The fault was there to be handled: the dose moved off its fault-free course.
    assert rec["peak_nh3_kgh"] > 0


def test_the_ceiling_is_the_stoichiometric_need_of_the_credible_inlet():
    """One run of the strategy on a frozen snapshot whose outlet reads far
    above its set point: the trim would open the valve to its end; the dose
    stays at 1.0 x the stoichiometric NH3 of the inlet at the flow the load
    supports (a flow reading 50 % high does not raise it)."""
    from controller.loops.denox import FeedforwardSmithStrategy
    s = FeedforwardSmithStrategy()
    snap = {"scr": {"o2_pct": 6.0, "flue_gas_flow_nm3h": 1.5e6, "unit_load_pct": 50.0,
                    "nox_in_mg_nm3": 300.0, "nox_out_mg_nm3": 200.0, "nh3_slip_ppm": 0.5,
                    "flue_gas_temp_c": 340.0, "analyzer_fault": 0, "analyzer_blowback": 0}}
    for k in range(900):
        snap["scr"]["nox_in_mg_nm3"] = 300.0 + 1e-6 * (k % 2)  # live, not frozen
        snap["scr"]["nox_out_mg_nm3"] = 200.0 + 1e-6 * (k % 2)
        cmd = s.run(float(k), snap)["scr"]
    kgh = cmd["valve_cmd_pct"] * s.NH3_MAX_KGH / 100.0
    need = 0.3696e-6 * 1.0e6 * 300.0  # at the load's 1.0e6 Nm3/h, not the 1.5e6 read
    assert kgh == pytest.approx(need, rel=1e-5)


def test_a_frozen_inlet_reading_falls_back_below_the_credible_level():
    """The inlet reading freezes (the same value INLET_STUCK_N polls in a
    row) at 600 mg/Nm3 while the outlet wrongly reads high, so the credible
    level climbs: the feedforward's inlet falls back to the level it had and
    never follows the level up."""
    from controller.loops.denox import FeedforwardSmithStrategy
    s = FeedforwardSmithStrategy()
    for k in range(600):
        s.run(float(k), _snap(330.0))
    used = []
    for k in range(600, 1500):
        snap = _snap(0.0, nox_out=120.0)
        snap["scr"]["nox_in_mg_nm3"] = 600.0
        s.run(float(k), snap)
        used.append(s.nox_in_last)
    assert s.nox_in_ref > 400.0                     # the wrong outlet raised the level
    assert max(used[s.INLET_STUCK_N + 1:]) <= 1.15 * 330.0 * 1.05
    assert used[-1] == pytest.approx(min(used[s.INLET_STUCK_N:]))   # held, not climbing


_k = [0]


def _snap(nox_in, nox_out=46.5, slip=0.5):
    # A live CEMS reading is never exactly constant (a frozen one is a failed
    # analyzer, STUCK_N): +-0.1 mg/Nm3 of register noise on both analyzers.
    _k[0] += 1
    return {"scr": {"o2_pct": 6.0, "flue_gas_flow_nm3h": 1.0e6, "unit_load_pct": 50.0,
                    "nox_in_mg_nm3": nox_in + 0.1 * (_k[0] % 2), "nox_out_mg_nm3": nox_out + 0.1 * (_k[0] % 2), "nh3_slip_ppm": slip,
                    "flue_gas_temp_c": 340.0, "analyzer_fault": 0, "analyzer_blowback": 0}}


def test_an_inlet_reading_far_above_its_credible_level_doses_at_most_15_percent_more():
    """The inlet settled at 330 mg/Nm3; it then reads 500 (plausible, in
    range) while the outlet stays at its set point: the feedforward's inlet
    rises smoothly (no jump) and never beyond 1.15 x the credible level (which
    itself follows only as far as the outlet confirms)."""
    from controller.loops.denox import FeedforwardSmithStrategy
    s = FeedforwardSmithStrategy()
    for k in range(600):
        s.run(float(k), _snap(330.0))
    level = s.nox_in_ref
    assert level == pytest.approx(330.0, rel=0.05)
    used, levels = [], []
    for k in range(600, 900):
        levels.append(s.nox_in_ref)
        s.run(float(k), _snap(500.0))
        used.append(s.nox_in_last)
    assert all(u <= 1.15 * lv + 1e-6 for u, lv in zip(used, levels))
    assert max(used) < 1.25 * level   # far from the 500 read
    assert max(b - a for a, b in zip(used, used[1:])) < 5.0   # no cliff: small steps
    assert used[-1] > 1.1 * level                            # a real rise is mostly followed


def test_a_noisy_inlet_reading_feeds_forward_its_median():
    """Noise of std 100 mg/Nm3 on a 330 mg/Nm3 inlet: the feedforward's inlet
    stays within 15 % of 330 (the slew-limited reading tracks the median;
    the reading itself is beyond +30 % one sample in ten)."""
    import numpy as np
    from controller.loops.denox import FeedforwardSmithStrategy
    rng = np.random.default_rng(3)
    s = FeedforwardSmithStrategy()
    for k in range(600):
        s.run(float(k), _snap(330.0))
    used = []
    for k in range(600, 2400):
        s.run(float(k), _snap(330.0 + 100.0 * rng.standard_normal()))
        used.append(s.nox_in_last)
    assert max(used) < 1.15 * 330.0 and min(used) > 0.85 * 330.0


def test_evidence_of_overdose_uses_nothing_above_the_credible_level():
    """Outlet 20 mg below its set point and slip 3 ppm while the inlet reads
    high: the feedforward's inlet is the credible level, not above it."""
    from controller.loops.denox import FeedforwardSmithStrategy
    s = FeedforwardSmithStrategy()
    for k in range(600):
        s.run(float(k), _snap(330.0))
    for k in range(600, 700):
        level = s.nox_in_ref
        s.run(float(k), _snap(450.0, nox_out=26.0, slip=3.0))
        assert s.nox_in_last <= level + 1e-9
