"""The KPI frame (after BOPTEST), shared by simulations and the live service.

Energy (kWh per drive and total), CO2 (grid factor), reagents (kg NH3, kg
limestone), emissions as clock-hour means at 6 % O2 against the limits,
exceedance hours and violation integrals (mg/Nm3 h), NH3 slip statistics,
minimum header pressure and time below it, process-demand violations, actuator
travel and the computational time ratio. Fed once per step with the plant's
truths (what really happened, not what an analyzer said) and the commands.
"""

import math

import numpy as np

from cython_ext import load

M_CACO3 = 100.087


def at_6pct_o2(c_mg_nm3, o2_pct, o2_ref_pct=6.0):
    """Reference-oxygen correction: C_ref = C (21 - O2_ref) / (21 - O2)."""
    return c_mg_nm3 * (21.0 - o2_ref_pct) / (21.0 - o2_pct)


class EmissionHours:
    """Clock-hour means of one stack's concentration at the reference O2: the
    one implementation behind the simulator's KPI frame and the live service.

    add(t_s, dt_s, c, o2): c (mg/Nm3 as measured) and o2 (%) held over
    [t_s, t_s + dt_s), time-weighted; None or NaN is a gap (time passes, no
    value). An hour's mean counts once the hour has closed; the open hour counts
    in hours() once half of it is valid (a run that ends mid-hour).
    """

    def __init__(self, limit_mg_nm3, o2_ref_pct=6.0):
        self.limit, self.o2_ref = limit_mg_nm3, o2_ref_pct
        self._bins = load("filters").HourlyMean(1)
        self._x = np.zeros(1)
        self._ok = np.zeros(1, dtype=np.int8)
        self.closed = []      # [(hour start s, mean or None)]

    def add(self, t_s, dt_s, c, o2):
        good = c is not None and o2 is not None and math.isfinite(c) and math.isfinite(o2) \
            and o2 < 21.0
        self._x[0] = at_6pct_o2(c, o2, self.o2_ref) if good else 0.0
        self._ok[0] = 1 if good else 0
        n = len(self._bins.closed)
        self._bins.add(t_s, t_s + dt_s, self._x, self._ok)
        for start, m, valid in self._bins.closed[n:]:
            self.closed.append((start, float(m[0]) if valid[0] > 0 else None))
        del self._bins.closed[:]
        return self._x[0] if good else None

    def current(self):
        """(mean so far of the open hour or None, its valid seconds)."""
        _, m, valid = self._bins.current()
        return (float(m[0]) if valid[0] > 0 else None), float(valid[0])

    def hours(self):
        out = [m for _, m in self.closed if m is not None]
        m, valid_s = self.current()
        if m is not None and valid_s >= 1800:
            out.append(m)
        return out

    def exceed_hours(self):
        return sum(1 for _, m in self.closed if m is not None and m > self.limit)

    def capture(self):
        m, valid_s = self.current()
        start = self._bins.current()[0]
        return {"closed": self.closed[-48:], "n_closed": len(self.closed),
                "exceed": self.exceed_hours(), "open": [start, m, valid_s]}

    def restore(self, saved):
        self.closed = [tuple(x) for x in saved.get("closed", [])]
        start, m, valid_s = saved.get("open", [None, None, 0.0])
        if start is not None and m is not None and math.isfinite(start) and valid_s > 0:
            # The open hour's mean and valid time, as one held value (21 - 15 x: O2 at ref).
            self._x[0] = m
            self._ok[0] = 1
            self._bins.add(start, start + valid_s, self._x, self._ok)


class KpiFrame:
    def __init__(self, plant, grid_kg_co2_per_kwh=0.581, nox_limit_mg_nm3=50.0,
                 so2_limit_mg_nm3=35.0, ph_band=(5.2, 5.8), demand_tolerance=0.02):
        self.plant = plant
        self.grid = grid_kg_co2_per_kwh
        self.nox_limit, self.so2_limit = nox_limit_mg_nm3, so2_limit_mg_nm3
        self.ph_band = ph_band
        self.tol = demand_tolerance
        self.t_s = 0.0
        self.kwh = {}
        self.travel = 0.0
        self._last_cmd = {}
        self.demand_ok_s = 0.0
        self.p_min = math.inf
        self.below_s = 0.0
        self.below_bar_h = 0.0
        limit = nox_limit_mg_nm3 if plant == "scr" else so2_limit_mg_nm3
        self.hourly = EmissionHours(limit) if plant in ("scr", "fgd") else None
        self.samples = []
        self.slip = []
        self.nh3_kg = 0.0
        self.limestone_kg = 0.0
        self.ph_in_band_s = 0.0
        self.emission_violation = 0.0

    def add(self, t_s, dt_s, truth, commands):
        for dev, kw in truth["power_kw"].items():
            self.kwh[dev] = self.kwh.get(dev, 0.0) + kw * dt_s / 3600.0
        for dev, cmds in commands.items():
            for k, v in cmds.items():
                key = (dev, k)
                if key in self._last_cmd:
                    self.travel += abs(float(v) - self._last_cmd[key])
                self._last_cmd[key] = float(v)
        if "demand_m3s" in truth:
            d = truth["demand_m3s"]
            if abs(truth["flow_m3s"] - d) <= self.tol * max(d, 1e-9):
                self.demand_ok_s += dt_s
        if "pressure_barg" in truth:
            p = truth["pressure_barg"]
            self.p_min = min(self.p_min, p)
            if p < truth["min_pressure_barg"]:
                self.below_s += dt_s
                self.below_bar_h += (truth["min_pressure_barg"] - p) * dt_s / 3600
        if self.plant == "scr":
            self._emission(t_s, dt_s, truth["nox_out_mg_nm3"], truth["o2_pct"])
            self.slip.append(truth["slip_ppm"])
            self.nh3_kg += truth["nh3_kgh"] * dt_s / 3600
        if self.plant == "fgd":
            self._emission(t_s, dt_s, truth["so2_out_mg_nm3"], truth["o2_pct"])
            self.limestone_kg += truth["limestone_kmol_s"] * M_CACO3 * dt_s
            if self.ph_band[0] <= truth["ph"] <= self.ph_band[1]:
                self.ph_in_band_s += dt_s
        self.t_s += dt_s

    def _emission(self, t_s, dt_s, c, o2):
        c6 = self.hourly.add(t_s, dt_s, c, o2)
        if c6 is not None:
            self.samples.append(c6)

    def result(self, wall_s=None):
        total = sum(self.kwh.values())
        r = {"energy_kwh": round(total, 3), "co2_kg": round(total * self.grid, 3),
             "energy_kwh_by_drive": {k: round(v, 3) for k, v in self.kwh.items()},
             "actuator_travel": round(self.travel, 3)}
        if self.plant in ("fan", "pump"):
            r["demand_met_frac"] = round(self.demand_ok_s / max(self.t_s, 1e-9), 5)
        if self.plant == "compressor":
            r["pressure_min_bar"] = round(self.p_min, 4)
            r["time_below_min_s"] = round(self.below_s, 1)
            r["pressure_violation_bar_h"] = round(self.below_bar_h, 5)
        if self.plant in ("scr", "fgd"):
            hours = self.hourly.hours()
            limit = self.nox_limit if self.plant == "scr" else self.so2_limit
            name = "nox" if self.plant == "scr" else "so2"
            r[name + "_hourly_max_mg_nm3"] = round(max(hours), 3) if hours else None
            r[name + "_exceed_hours"] = sum(1 for h in hours if h > limit)
            r[name + "_violation_mg_nm3_h"] = round(sum(max(0.0, h - limit) for h in hours), 3)
            r[name + "_std_mg_nm3"] = round(float(np.std(self.samples)), 4) if self.samples else None
            r[name + "_mean_mg_nm3"] = round(float(np.mean(self.samples)), 4) if self.samples else None
        if self.plant == "scr":
            r["nh3_kg"] = round(self.nh3_kg, 3)
            r["nh3_slip_p95_ppm"] = round(float(np.percentile(self.slip, 95)), 4) if self.slip else None
            r["nh3_slip_max_ppm"] = round(float(np.max(self.slip)), 4) if self.slip else None
        if self.plant == "fgd":
            r["recirc_pump_kwh"] = round(sum(v for k, v in self.kwh.items() if k.startswith("pump")), 3)
            r["limestone_kg"] = round(self.limestone_kg, 3)
            r["ph_in_band_frac"] = round(self.ph_in_band_s / max(self.t_s, 1e-9), 5)
        if wall_s is not None:
            r["wall_s"] = round(wall_s, 3)
            r["computational_time_ratio"] = round(wall_s / max(self.t_s, 1e-9), 8)
        return r
