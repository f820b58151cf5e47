"""SCR denitrification reactor (device "scr", scr profile).

Flue gas follows boiler load: Q = Q_full load, T from T_half (50 %) to T_full
(100 %), O2 rises at low load. Inlet NOx (mg/Nm3 as NO2, dry) from the
scenario with step events; NH3 from the dosing valve (linear, nh3_max_kgh at
100 %, only while dosing is enabled). The reactor is the multi-cell NH3-storage
stepper (cython_ext.plants.ScrReactor); outlet NOx and NH3 slip reach the host
through an analyzer with dead time, lag, blow-back holds and faults.
Concentrations convert between mg/Nm3 (dry, 273.15 K) and mol/m3 at reactor T.
"""

import math

import numpy as np

from cython_ext import load
from hil_tests.plants.analyzer import Analyzer, Cems, FlowMeter, cems_params
from hil_tests.plants.base import Plant

M_NO2 = 46.0055
M_NH3 = 17.031
R = 8.314462618


class ScrPlant(Plant):
    DEVICES = {"scr": "scr"}
    PARAMS = {
        "volume_m3": (700.0, 1.0, 1e5), "cells": (3, 1, 20),
        "Ka": (30.0, 1e-6, 1e6), "Kd_ref": (5e-4, 1e-9, 10.0), "Kr_ref": (10.0, 1e-6, 1e6),
        "Ko_ref": (1e-4, 0.0, 10.0), "omega": (3.0, 1e-3, 100.0),
        "Ed0_j_mol": (100e3, 0.0, 5e5), "Er_j_mol": (60e3, 0.0, 5e5), "Eo_j_mol": (150e3, 0.0, 5e5),
        "alpha": (0.4, 0.0, 2.0), "Tref_k": (643.0, 400.0, 900.0),
        "flow_full_nm3h": (2.0e6, 1e3, 1e8), "temp_full_c": (370.0, 200.0, 500.0),
        "temp_half_c": (330.0, 150.0, 500.0), "o2_full_pct": (3.5, 0.0, 20.0),
        "o2_half_pct": (6.0, 0.0, 20.0), "nh3_max_kgh": (400.0, 1.0, 1e4),
        "analyzer_dead_time_s": (120.0, 0.0, 900.0), "analyzer_lag_s": (25.0, 0.1, 600.0),
        "analyzer_noise_mg": (0.3, 0.0, 50.0), "min_catalyst_temp_c": (300.0, 100.0, 450.0),
        # The unit is in operation at t = 0: the catalyst holds the NH3 it stores
        # after hours of dosing at this NH3/NOx ratio (0: a fresh, empty catalyst).
        "initial_anr": (0.9, 0.0, 1.2),
        # The outlet analyzer's daily calibration (output held, analyzer_cal = 1).
        "analyzer_cal_every_h": (24.0, 0.0, 24 * 31), "analyzer_cal_s": (600.0, 0.0, 3600.0),
        "analyzer_cal_phase_h": (3.25, 0.0, 24 * 31),
        # The inlet instruments the strategies read (docs/models.md, "Instruments"):
        # inlet NOx (extractive CEMS), O2 (in-situ zirconia probe), flue-gas flow,
        # flue-gas temperature, NH3 flow, unit load (the DCS's MW signal).
        **cems_params("nox_in", 90.0, 25.0, 2.0, 10.0, 24.0, 600.0, 3.0, 2.0, 240.0, 0.5),
        **cems_params("o2", 5.0, 10.0, 0.05, 0.1, 24.0, 300.0, 3.0, 0.0, 0.0, 0.0),
        "flow_bias_frac": (0.03, -0.5, 0.5), "flow_noise_frac": (0.01, 0.0, 0.2),
        "flow_lag_s": (5.0, 0.0, 600.0),
        "temp_lag_s": (20.0, 0.0, 600.0), "temp_noise_c": (0.0, 0.0, 20.0),
        "nh3_flow_lag_s": (0.0, 0.0, 600.0), "nh3_flow_noise_frac": (0.0, 0.0, 0.2),
        "load_lag_s": (0.0, 0.0, 600.0),
    }
    SPEC = {"profiles": {"load_pct": (0.0, 120.0), "nox_in_mg_nm3": (0.0, 3000.0)},
            "events": {"nox_step": {"frac": (-0.9, 3.0)}, "analyzer_blowback": {},
                       "analyzer_stuck": {}, "analyzer_drift": {"mg_per_h": (-100, 100)},
                       "dead_time": {"dead_time_s": (0, 900)}, "temp_offset": {"delta_c": (-150, 150)},
                       "wire_break": {}, "maldistribution": {"frac": (0, 0.5)}},
            "signals": {"scr": ("flue_gas_flow_nm3h", "flue_gas_temp_c", "nox_in_mg_nm3",
                                "nox_out_mg_nm3", "o2_pct", "nh3_flow_kgh", "nh3_slip_ppm",
                                "unit_load_pct")}}

    def __init__(self, name, scenario, params=None, options=None):
        super().__init__(name, scenario, params, options)
        p = self.p
        self.reactor = load("plants").ScrReactor(
            p["volume_m3"], int(p["cells"]), p["Ka"], p["Kd_ref"], p["Kr_ref"], p["Ko_ref"],
            p["omega"], p["Ed0_j_mol"], p["Er_j_mol"], p["Eo_j_mol"], p["alpha"], p["Tref_k"])
        dt = scenario.step_s
        nox0 = slip0 = 0.0
        if p["initial_anr"] > 0:
            nox0, slip0 = self._warm_start(p["initial_anr"])
        self.nox_an = Analyzer(dt, p["analyzer_dead_time_s"], p["analyzer_lag_s"], initial=nox0)
        self.slip_an = Analyzer(dt, p["analyzer_dead_time_s"], p["analyzer_lag_s"], initial=slip0)
        self.cmd["scr"].update(valve_cmd_pct=0.0, dosing_enable=0)
        self._rng = np.random.default_rng(scenario.seed + 31)
        self.nox_out = self.nox_in = self.slip_ppm = self.nh3_kgh = 0.0
        self.load = self.temp_c = self.o2 = 0.0
        self.q_nm3h = 1.0
        # The instruments, each at the t = 0 conditions (the unit is running).
        sd = scenario.seed
        load0 = scenario.profiles["load_pct"].base(0.0)
        q0, t0, o20 = self.gas(load0)
        self.nox_in_an = Cems.from_params(p, "nox_in", dt,
                                          scenario.profiles["nox_in_mg_nm3"].base(0.0), [sd, 311])
        self.o2_an = Cems.from_params(p, "o2", dt, o20, [sd, 312])
        self.flow_m = FlowMeter(dt, p["flow_bias_frac"], p["flow_noise_frac"], p["flow_lag_s"],
                                q0, [sd, 313])
        self.temp_m = FlowMeter(dt, 0.0, 0.0, p["temp_lag_s"], t0, [sd, 314])
        self._temp_rng = np.random.default_rng([sd, 315])
        self.nh3_m = FlowMeter(dt, 0.0, p["nh3_flow_noise_frac"], p["nh3_flow_lag_s"], 0.0, [sd, 316])
        self.load_m = FlowMeter(dt, 0.0, 0.0, p["load_lag_s"], load0, [sd, 317])

    def _warm_start(self, anr, hours=8.0):
        """Run the reactor at the scenario's t = 0 conditions with NH3 at anr x the
        inlet NO (molar) until the catalyst's NH3 storage settles; returns the
        outlet NOx (mg/Nm3) and slip (ppm) the analyzers start from."""
        sc = self.sc
        q, t_c, _ = self.gas(sc.profiles["load_pct"].base(0.0))
        T = t_c + 273.15
        F = q / 3600.0 * T / 273.15
        c_no = sc.profiles["nox_in_mg_nm3"].base(0.0) / 1000.0 / M_NO2 * 273.15 / T
        for _ in range(int(hours * 3600 / 60)):
            no_out, nh3_out = self.reactor.step(60.0, F, T, c_no, anr * c_no)
        return no_out * M_NO2 * 1000.0 * T / 273.15, nh3_out / (101325.0 / (R * T)) * 1e6

    def gas(self, load_pct):
        p = self.p
        x = load_pct / 100.0
        t = p["temp_half_c"] + (p["temp_full_c"] - p["temp_half_c"]) * (x - 0.5) / 0.5
        o2 = p["o2_half_pct"] + (p["o2_full_pct"] - p["o2_half_pct"]) * (x - 0.5) / 0.5
        return max(p["flow_full_nm3h"] * x, 1.0), t, min(max(o2, 0.5), 15.0)

    def step(self, t_s, dt_s):
        sc, p = self.sc, self.p
        self.load = sc.profiles["load_pct"](t_s)
        self.q_nm3h, t_c, self.o2 = self.gas(self.load)
        t_c += sum(e.fields["delta_c"] for e in sc.active("temp_offset", t_s))
        self.temp_c = t_c
        T = t_c + 273.15
        nox_in = sc.profiles["nox_in_mg_nm3"](t_s)
        nox_in *= 1 + sum(e.fields["frac"] for e in sc.active("nox_step", t_s))
        self.nox_in = max(nox_in, 0.0)
        c = self.cmd["scr"]
        self.nh3_kgh = p["nh3_max_kgh"] * min(max(c["valve_cmd_pct"], 0.0), 100.0) / 100.0 \
            if c["dosing_enable"] else 0.0
        F = self.q_nm3h / 3600.0 * T / 273.15
        c_no = self.nox_in / 1000.0 / M_NO2 * 273.15 / T
        c_nh3 = self.nh3_kgh / 3600.0 / (M_NH3 / 1000.0) / F
        mal = sum(e.fields["frac"] for e in sc.active("maldistribution", t_s))
        if mal:
            # Two half-streams with NH3 shifted between them: more slip, less removal.
            out = [self.reactor.step(0.0, F, T, c_no, c_nh3 * (1 + s * mal)) for s in (1, -1)]
            no_out, nh3_out = np.mean([o[0] for o in out]), np.mean([o[1] for o in out])
            self.reactor.step(dt_s, F, T, c_no, c_nh3)
        else:
            no_out, nh3_out = self.reactor.step(dt_s, F, T, c_no, c_nh3)
        self.nox_out = no_out * M_NO2 * 1000.0 * T / 273.15
        self.slip_ppm = nh3_out / (101325.0 / (R * T)) * 1e6
        dead = [e.fields["dead_time_s"] for e in sc.active("dead_time", t_s)]
        d = dead[-1] if dead else None
        self.nox_an.step(self.nox_out, d)
        self.slip_an.step(self.slip_ppm, d)
        self.nox_in_an.step(t_s, self.nox_in)
        self.o2_an.step(t_s, self.o2)
        self.flow_m.step(self.q_nm3h)
        self.temp_m.step(self.temp_c)
        self.nh3_m.step(self.nh3_kgh)
        self.load_m.step(self.load)
        self.t_s = t_s + dt_s

    def _outlet_cal(self, t):
        every, dur, phase = (self.p["analyzer_cal_every_h"] * 3600, self.p["analyzer_cal_s"],
                             self.p["analyzer_cal_phase_h"] * 3600)
        return bool(every and dur and t >= phase and (t - phase) % every < dur)

    def measure(self):
        sc, t = self.sc, self.t_s
        bb = bool(sc.active("analyzer_blowback", t))
        cal = self._outlet_cal(t)
        stuck = bool(sc.active("analyzer_stuck", t))
        drift = sum(e.fields["mg_per_h"] * (t - e.at_s) / 3600 for e in sc.active("analyzer_drift", t))
        broken = bool(sc.active("wire_break", t))
        hold = bb or cal
        nox = self.nox_an.reading(hold, stuck, drift)
        if not hold:
            nox += self.p["analyzer_noise_mg"] * self._rng.standard_normal()
        c = self.cmd["scr"]
        # Every point below is an instrument's output, never the plant's state:
        # tests/test_measured_inputs.py.
        temp = self.temp_m.reading()
        if self.p["temp_noise_c"]:
            temp += self.p["temp_noise_c"] * self._temp_rng.standard_normal()
        return {"scr": {
            "flue_gas_flow_nm3h": self.flow_m.reading(), "flue_gas_temp_c": temp,
            "nox_in_mg_nm3": self.nox_in_an.reading(t),
            "nox_out_mg_nm3": float("nan") if broken else max(nox, 0.0),
            "o2_pct": self.o2_an.reading(t), "nh3_flow_kgh": self.nh3_m.reading(),
            "nh3_slip_ppm": self.slip_an.reading(hold, stuck), "valve_pos_pct": c["valve_cmd_pct"],
            "unit_load_pct": self.load_m.reading(), "analyzer_blowback": int(bb),
            "analyzer_fault": int(broken), "analyzer_cal": int(cal),
            "dosing_active": int(bool(c["dosing_enable"])),
        }, "process": {}}

    def truth(self):
        t = self.t_s
        return {"power_kw": {}, "nox_out_mg_nm3": self.nox_out, "o2_pct": self.o2,
                "slip_ppm": self.slip_ppm, "nh3_kgh": self.nh3_kgh, "nox_in_mg_nm3": self.nox_in,
                "temp_c": self.temp_c,
                # The stack (outlet) CEMS: minutes it has no valid value (the KPI frame).
                "cems_excluded": bool(self.sc.active("analyzer_blowback", t)) or self._outlet_cal(t),
                "cems_fault": bool(self.sc.active("wire_break", t))}
