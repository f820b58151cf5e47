"""Compressed-air station: fixed-speed load/unload machines, one VSD machine,
receiver + piping volume, pressure-dependent leaks (docs/models.md section 2).

Devices c1..c3 (fixed) and vsd use the compressor profile; "process" carries
the demand for reporting. Pressures in bar(g) at the points, absolute inside.
- fixed, loaded: flow Q_fl; power P_fl (1 + k_p (p - p_rated))   (~7 %/bar)
- fixed, unloaded: power decays from 60 % to 25 % of P_fl (blowdown time constant)
- VSD: flow q in q_min..q_max by speed; power P_fl (0.09 + 0.91 q/q_max)(1 + k_p dp)
- header: dp/dt = (p_atm / V)(sum Q - Q_prod - Q_leak p/p_nom)  (AirHeader stepper)
- a tripped machine stops and cannot run until the trip clears.
"""

import math

import numpy as np

from cython_ext import load
from hil_tests.plants.base import Plant

P_ATM = 1.01325


class CompressorStation(Plant):
    DEVICES = {"c1": "compressor", "c2": "compressor", "c3": "compressor", "vsd": "compressor"}
    PARAMS = {
        "fixed_flow_m3min": (15.0, 0.1, 500.0),
        "fixed_power_kw": (90.0, 1.0, 2000.0),
        "vsd_min_flow_m3min": (3.0, 0.1, 500.0),
        "vsd_max_flow_m3min": (13.0, 0.1, 500.0),
        "vsd_power_kw": (75.0, 1.0, 2000.0),
        "rated_pressure_barg": (7.0, 1.0, 15.0),
        "power_per_bar": (0.07, 0.0, 0.2),
        "unload_start_frac": (0.60, 0.0, 1.0),
        "unload_end_frac": (0.25, 0.0, 1.0),
        "blowdown_tau_s": (40.0, 1.0, 600.0),
        "volume_m3": (13.0, 0.1, 1000.0),
        "leak_frac": (0.15, 0.0, 0.6),
        "capacity_m3min": (58.0, 1.0, 5000.0),
        "min_pressure_barg": (6.0, 0.5, 15.0),
        "initial_pressure_barg": (7.0, 0.0, 15.0),
        "pressure_noise_bar": (0.005, 0.0, 0.5),
        "speed_tau_s": (3.0, 0.01, 60.0),
    }
    SPEC = {"profiles": {"demand_frac": (0.0, 1.5)},
            "events": {"trip": {"machine": (1, 4)}, "surge": {"flow_m3min": (0, 200)},
                       "leak_growth": {"extra_frac": (0, 1)},
                       "pressure_sensor_stuck": {}, "pressure_sensor_drift": {"bar_per_h": (-5, 5)}},
            "signals": {n: ("discharge_pressure_bar", "power_kw", "run_hours_h", "starts_last_hour")
                        for n in ("c1", "c2", "c3", "vsd")}}
    NAMES = ("c1", "c2", "c3", "vsd")

    def __init__(self, name, scenario, params=None, options=None):
        super().__init__(name, scenario, params, options)
        p = self.p
        self.header = load("plants").AirHeader(p["volume_m3"], p["initial_pressure_barg"] + P_ATM, P_ATM)
        self.state = {n: {"loaded": 0, "running": 0, "unload_s": 1e9, "speed": 0.0, "kw": 0.0,
                          "flow": 0.0, "starts": [], "hours": 0.0} for n in self.NAMES}
        for n in self.NAMES:
            self.cmd[n].update(run_cmd=0, load_cmd=0, speed_ref_pct=0.0)
        self._rng = np.random.default_rng(scenario.seed + 21)
        self._stuck = None
        self.demand_m3min = 0.0
        self.leak_m3min = 0.0
        self.energy_kwh = 0.0

    def _tripped(self, i):
        return any(int(e.fields["machine"]) == i + 1 for e in self.sc.active("trip", self.t_s))

    def step(self, t_s, dt_s):
        p = self.p
        pg = self.header.p_bar - P_ATM
        pfac = 1 + p["power_per_bar"] * (pg - p["rated_pressure_barg"])
        supply = 0.0
        total_kw = 0.0
        for i, n in enumerate(self.NAMES):
            s, c = self.state[n], self.cmd[n]
            run = bool(c["run_cmd"]) and not self._tripped(i)
            if run and not s["running"]:
                s["starts"].append(t_s)
            s["running"] = int(run)
            s["starts"] = [x for x in s["starts"] if x > t_s - 3600]
            if not run:
                s.update(loaded=0, kw=0.0, flow=0.0, speed=0.0, unload_s=1e9)
                continue
            s["hours"] += dt_s / 3600
            if n == "vsd":
                a = math.exp(-dt_s / p["speed_tau_s"])
                s["speed"] = a * s["speed"] + (1 - a) * min(max(c["speed_ref_pct"], 0.0), 100.0) / 100
                q = p["vsd_max_flow_m3min"] * s["speed"]
                loaded = bool(c["load_cmd"]) and q >= p["vsd_min_flow_m3min"]
                if loaded:
                    s.update(loaded=1, flow=q, unload_s=0.0,
                             kw=p["vsd_power_kw"] * (0.09 + 0.91 * q / p["vsd_max_flow_m3min"]) * pfac)
                else:
                    s["unload_s"] = 0.0 if s["loaded"] else s["unload_s"] + dt_s
                    s.update(loaded=0, flow=0.0, kw=p["vsd_power_kw"] * p["unload_end_frac"] * 0.5)
            else:
                if c["load_cmd"]:
                    s.update(loaded=1, flow=p["fixed_flow_m3min"], unload_s=0.0,
                             kw=p["fixed_power_kw"] * pfac)
                else:
                    s["unload_s"] = 0.0 if s["loaded"] else s["unload_s"] + dt_s
                    frac = p["unload_end_frac"] + (p["unload_start_frac"] - p["unload_end_frac"]) \
                        * math.exp(-s["unload_s"] / p["blowdown_tau_s"])
                    s.update(loaded=0, flow=0.0, kw=p["fixed_power_kw"] * frac)
            supply += s["flow"]
            total_kw += s["kw"]
        demand = self.sc.profiles["demand_frac"](t_s) * p["capacity_m3min"]
        demand += sum(e.fields["flow_m3min"] for e in self.sc.active("surge", t_s))
        leak = (p["leak_frac"] + sum(e.fields["extra_frac"] for e in self.sc.active("leak_growth", t_s))) \
            * p["capacity_m3min"]
        p_nom = p["rated_pressure_barg"] + P_ATM
        self.header.step(dt_s, supply / 60.0, demand / 60.0, leak / 60.0, p_nom)
        self.demand_m3min, self.leak_m3min = demand, leak * self.header.p_bar / p_nom
        self.supply_m3min = supply
        self.total_kw = total_kw
        self.energy_kwh += total_kw * dt_s / 3600
        self.t_s = t_s + dt_s

    def pressure_barg(self):
        return self.header.p_bar - P_ATM

    def measure(self):
        pg = self.pressure_barg() + self.p["pressure_noise_bar"] * self._rng.standard_normal()
        for e in self.sc.active("pressure_sensor_drift", self.t_s):
            pg += e.fields["bar_per_h"] * (self.t_s - e.at_s) / 3600
        if self.sc.active("pressure_sensor_stuck", self.t_s):
            self._stuck = pg if self._stuck is None else self._stuck
            pg = self._stuck
        else:
            self._stuck = None
        out = {}
        for i, n in enumerate(self.NAMES):
            s = self.state[n]
            out[n] = {"discharge_pressure_bar": pg, "power_kw": s["kw"], "running": s["running"],
                      "loaded": s["loaded"], "speed_actual_pct": 100 * s["speed"],
                      "comp_fault": 1 if self._tripped(i) else 0,
                      "starts_last_hour": len(s["starts"]), "run_hours_h": s["hours"]}
        out["process"] = {"demand_m3min": self.demand_m3min}
        return out

    def truth(self):
        return {"power_kw": {n: self.state[n]["kw"] for n in self.NAMES},
                "pressure_barg": self.pressure_barg(), "demand_m3min": self.demand_m3min,
                "supply_m3min": self.supply_m3min, "leak_m3min": self.leak_m3min,
                "min_pressure_barg": self.p["min_pressure_barg"]}
