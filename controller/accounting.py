"""The KPI frame (after BOPTEST), shared by simulations and the live service.

Size (408 lines): the KPI frame and the CEMS emission hours, one accounting for the
simulator and the live service, together so they cannot diverge again.

Energy (kWh per drive and total), CO2 (grid factor), reagents (kg NH3, kg
limestone), emissions as a CEMS data system accounts them (EmissionHours: minute values
at the reference O2, clock hours and half hours valid with >= 75 % valid
minutes, calendar days, blow-back and calibration excluded; docs/emissions.md)
against the limits, exceedance hours and violation integrals (mg/Nm3 h), NH3
slip statistics, minimum header pressure and time below it, process-demand
violations, actuator travel and the computational time ratio. Fed once per step
with the plant's truths (what really happened, not what an analyzer said) and
the commands; a plant's truth says when its stack analyzer was in blow-back or
calibration (`cems_excluded`) or failed (`cems_fault`): those minutes are not
valid, as the CEMS would have no value for them.
"""

import math

import numpy as np

from cython_ext import load

M_CACO3 = 100.087


def at_6pct_o2(c_mg_nm3, o2_pct, o2_ref_pct=6.0):
    """Reference-oxygen correction: C_ref = C (21 - O2_ref) / (21 - O2)."""
    return c_mg_nm3 * (21.0 - o2_ref_pct) / (21.0 - o2_pct)


class Period:
    """One closed averaging period of a stack's concentration (docs/emissions.md).

    start_s: the period's start (clock-aligned); mean: the mean of its valid
    minute values at the reference O2, or None when the period is invalid (fewer
    than the validity fraction of its minutes valid); valid_min: its valid
    minutes; excluded_min: minutes the analyzer was in blow-back or calibration
    (not valid, and not a fault); minutes: the minutes the period holds."""

    __slots__ = ("start_s", "mean", "valid_min", "excluded_min", "minutes")

    def __init__(self, start_s, mean, valid_min, excluded_min, minutes):
        self.start_s, self.mean = start_s, mean
        self.valid_min, self.excluded_min, self.minutes = valid_min, excluded_min, minutes

    @property
    def valid(self):
        return self.mean is not None

    def as_list(self):
        return [self.start_s, self.mean, self.valid_min, self.excluded_min, self.minutes]

    def __iter__(self):  # (start, mean): what the hour list was before
        return iter((self.start_s, self.mean))

    def __repr__(self):
        return "Period(%r, %r, %d/%d valid, %d excluded)" % (
            self.start_s, self.mean, self.valid_min, self.minutes, self.excluded_min)


class _Periods:
    """Minute values -> clock-aligned periods of period_s with the validity rule."""

    def __init__(self, period_s, min_valid_frac):
        self.period_s, self.min_valid_frac = period_s, min_valid_frac
        self.minutes = int(round(period_s / 60.0))
        self.closed = []
        self.start = None
        self.sum = 0.0
        self.n_valid = 0
        self.n_excl = 0

    def _close(self):
        ok = self.n_valid > 0 and self.n_valid >= self.min_valid_frac * self.minutes - 1e-9
        self.closed.append(Period(self.start, self.sum / self.n_valid if ok else None,
                                  self.n_valid, self.n_excl, self.minutes))
        self.sum, self.n_valid, self.n_excl = 0.0, 0, 0

    def minute(self, start_s, value, excluded):
        """One closed minute starting at start_s: value (None: not valid)."""
        p0 = math.floor(start_s / self.period_s + 1e-9) * self.period_s
        if self.start is None:
            self.start = p0
        while p0 >= self.start + self.period_s - 1e-6:
            self._close()
            self.start += self.period_s
        if value is not None:
            self.sum += value
            self.n_valid += 1
        if excluded:
            self.n_excl += 1
        if start_s + 60.0 >= self.start + self.period_s - 1e-6:  # its last minute
            self._close()
            self.start += self.period_s

    def open(self):
        """(start, mean so far or None, valid minutes) of the open period."""
        return self.start, (self.sum / self.n_valid if self.n_valid else None), self.n_valid


class EmissionHours:
    """A stack's emission accounting as a CEMS data system does it: the one
    implementation behind the simulator's KPI frame and the live service
    (docs/emissions.md).

    add(t_s, dt_s, c, o2, excluded=False): c (mg/Nm3 as measured) and o2 (%)
    held over [t_s, t_s + dt_s). Each sample is corrected to the reference O2;
    None, NaN, inf or O2 >= 21 % is no value (time passes, nothing is added);
    `excluded` marks analyzer blow-back or calibration (no value either, and
    counted as excluded). Samples -> clock-minute means (a minute is valid when
    a value covers at least MINUTE_VALID_FRAC of it) -> clock hours and half
    hours (a period is valid with at least min_valid_frac of its minutes valid,
    default 75 %; its mean is the mean of its valid minutes) -> calendar days
    (the mean of the valid hours; a day with more than max_invalid_hours_day
    invalid hours is invalid). Invalid periods are kept and reported, never
    averaged in.
    """

    MINUTE_S = 60.0
    MINUTE_VALID_FRAC = 0.5

    def __init__(self, limit_mg_nm3, o2_ref_pct=6.0, min_valid_frac=0.75,
                 max_invalid_hours_day=3, day_s=86400.0):
        if not (math.isfinite(limit_mg_nm3) and limit_mg_nm3 > 0):
            raise ValueError("emission limit %r mg/Nm3: expected > 0" % (limit_mg_nm3,))
        if not 0.0 <= o2_ref_pct < 21.0:
            raise ValueError("reference O2 %r %%: expected 0 to below 21" % (o2_ref_pct,))
        if not 0.0 < min_valid_frac <= 1.0:
            raise ValueError("min_valid_frac %r: expected above 0, at most 1" % (min_valid_frac,))
        self.limit, self.o2_ref = limit_mg_nm3, o2_ref_pct
        self.min_valid_frac = min_valid_frac
        self.max_invalid_hours_day = max_invalid_hours_day
        self.day_s = day_s
        # Channel 0: the value at the reference O2; channel 1: 1 while excluded.
        self._bins = load("filters").HourlyMean(2, self.MINUTE_S)
        self._x = np.zeros(2)
        self._ok = np.zeros(2, dtype=np.int8)
        self._hours = _Periods(3600.0, min_valid_frac)
        self._halves = _Periods(1800.0, min_valid_frac)
        self.closed = self._hours.closed          # [Period] of the closed clock hours
        self.half_hours = self._halves.closed     # [Period] of the closed half hours

    def add(self, t_s, dt_s, c, o2, excluded=False):
        """Returns the sample at the reference O2, or None when it counts as no value."""
        good = (not excluded and c is not None and o2 is not None and math.isfinite(c)
                and math.isfinite(o2) and o2 < 21.0)
        v = at_6pct_o2(c, o2, self.o2_ref) if good else 0.0
        if good and not math.isfinite(v):
            good, v = False, 0.0
        self._x[0] = v
        self._ok[0] = 1 if good else 0
        self._x[1] = 1.0 if excluded else 0.0
        self._ok[1] = 1
        n = len(self._bins.closed)
        self._bins.add(t_s, t_s + dt_s, self._x, self._ok)
        for start, m, valid in self._bins.closed[n:]:
            self._minute(start, float(m[0]) if valid[0] >= self.MINUTE_VALID_FRAC else None,
                         valid[1] > 0 and float(m[1]) >= 0.5)
        del self._bins.closed[:]
        return v if good else None

    def _minute(self, start, value, excluded):
        self._hours.minute(start, value, excluded)
        self._halves.minute(start, value, excluded)

    def current(self):
        """(mean so far of the open hour or None, its valid seconds): its closed
        valid minutes and the open minute's valid part."""
        _, hsum_mean, n = self._hours.open()
        s = (hsum_mean or 0.0) * n * self.MINUTE_S
        valid_s = n * self.MINUTE_S
        _, m, valid = self._bins.current()
        if valid[0] > 0:
            s += float(m[0]) * float(valid[0]) * self.MINUTE_S
            valid_s += float(valid[0]) * self.MINUTE_S
        return (s / valid_s if valid_s > 0 else None), valid_s

    def _open_period(self, agg):
        """The open period as a Period if its valid minutes already make it valid
        (a run that ends mid-period), else None."""
        start, m, n = agg.open()
        if start is None or m is None or n < self.min_valid_frac * agg.minutes - 1e-9:
            return None
        return Period(start, m, n, agg.n_excl, agg.minutes)

    def hours(self):
        """The valid hourly means: every closed valid hour, and the open hour if
        it is valid already."""
        out = [p.mean for p in self.closed if p.mean is not None]
        p = self._open_period(self._hours)
        if p is not None:
            out.append(p.mean)
        return out

    def invalid_hours(self):
        return sum(1 for p in self.closed if p.mean is None)

    def exceed_hours(self):
        return sum(1 for p in self.closed if p.mean is not None and p.mean > self.limit)

    def halfhour_means(self):
        out = [p.mean for p in self.half_hours if p.mean is not None]
        p = self._open_period(self._halves)
        if p is not None:
            out.append(p.mean)
        return out

    def days(self):
        """[Period] per calendar day of the closed hours (minutes fields count
        hours here): mean of the valid hourly means; None when more than
        max_invalid_hours_day hours of the day were invalid or none was valid.
        A day counts once its last hour has closed (or, for the open day of a
        run, once it has 24 h); a partial first or last day is reported as
        seen."""
        byday = {}
        for p in self.closed:
            byday.setdefault(math.floor(p.start_s / self.day_s + 1e-9) * self.day_s, []).append(p)
        out = []
        for d in sorted(byday):
            ps = byday[d]
            good = [p.mean for p in ps if p.mean is not None]
            bad = len(ps) - len(good)
            ok = good and bad <= self.max_invalid_hours_day
            out.append(Period(d, sum(good) / len(good) if ok else None, len(good),
                              sum(1 for p in ps if p.excluded_min), len(ps)))
        return out

    def summary(self, day_limit_factor=1.0):
        """The figures an emission report states (docs/emissions.md)."""
        hours = self.hours()
        halves = self.halfhour_means()
        days = self.days()
        dmeans = [d.mean for d in days if d.mean is not None]
        return {
            "hours_valid": len(hours), "hours_invalid": self.invalid_hours(),
            "minutes_excluded": sum(p.excluded_min for p in self.closed),
            "exceed_hours": sum(1 for h in hours if h > self.limit),
            "hourly_max": max(hours) if hours else None,
            "halfhour_max": max(halves) if halves else None,
            "exceed_halfhours": sum(1 for h in halves if h > self.limit),
            "daily_means": dmeans, "days_invalid": sum(1 for d in days if d.mean is None),
            "exceed_days": sum(1 for m in dmeans if m > day_limit_factor * self.limit),
            "violation_h": sum(max(0.0, h - self.limit) for h in hours),
        }

    def capture(self):
        start, m, n = self._hours.open()
        hs, hm, hn = self._halves.open()
        return {"closed": [p.as_list() for p in self.closed[-48:]], "n_closed": len(self.closed),
                "exceed": self.exceed_hours(), "invalid": self.invalid_hours(),
                "open": [start, m, n * self.MINUTE_S],
                "open_excluded_min": self._hours.n_excl,
                "half_open": [hs, hm, hn, self._halves.n_excl]}

    def restore(self, saved):
        """From capture() (or the earlier [start, mean] hours and
        open [start, mean, valid_s]). The open minute is not kept."""
        closed = []
        for x in saved.get("closed", []):
            x = list(x)
            if len(x) >= 5:
                closed.append(Period(*x[:5]))
            elif len(x) == 2:   # before the validity rule: a mean counted
                closed.append(Period(x[0], x[1], 60 if x[1] is not None else 0, 0, 60))
        self._hours.closed[:] = closed
        start, m, valid_s = (list(saved.get("open", [None, None, 0.0])) + [None, None, 0.0])[:3]
        if start is not None and m is not None and math.isfinite(start) and math.isfinite(m) \
                and valid_s and valid_s > 0:
            n = int(round(valid_s / self.MINUTE_S))
            h = self._hours
            h.start, h.sum, h.n_valid = float(start), m * n, n
            h.n_excl = int(saved.get("open_excluded_min", 0))
        half = saved.get("half_open")
        if half and half[0] is not None and half[1] is not None and math.isfinite(half[1]):
            hv = self._halves
            hv.start, hv.n_valid, hv.n_excl = float(half[0]), int(half[2]), int(half[3])
            hv.sum = half[1] * hv.n_valid


class KpiFrame:
    def __init__(self, plant, grid_kg_co2_per_kwh=0.581, nox_limit_mg_nm3=50.0,
                 so2_limit_mg_nm3=35.0, ph_band=(5.2, 5.8), demand_tolerance=0.02,
                 o2_ref_pct=6.0, gypsum_purity_min=0.90, sulfite_max_frac=0.005):
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
        self.hourly = EmissionHours(limit, o2_ref_pct) if plant in ("scr", "fgd") else None
        self.samples = []
        self.slip = []
        self.nh3_kg = 0.0
        self.limestone_kg = 0.0
        self.ph_in_band_s = 0.0
        self.emission_violation = 0.0
        # FGD solids (forced oxidation, docs/models.md section 4): the gypsum's
        # purity and CaSO3.1/2H2O content against their limits.
        self.gypsum_min, self.sulfite_max = gypsum_purity_min, sulfite_max_frac
        self.purity_lo = math.inf
        self.sulfite_hi = 0.0
        self.ox_lo = math.inf
        self.purity_w = self.purity_wsum = 0.0
        self.offspec_s = 0.0

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
            self._emission(t_s, dt_s, truth["nox_out_mg_nm3"], truth["o2_pct"], truth)
            self.slip.append(truth["slip_ppm"])
            self.nh3_kg += truth["nh3_kgh"] * dt_s / 3600
        if self.plant == "fgd":
            self._emission(t_s, dt_s, truth["so2_out_mg_nm3"], truth["o2_pct"], truth)
            self.limestone_kg += truth["limestone_kmol_s"] * M_CACO3 * dt_s
            if self.ph_band[0] <= truth["ph"] <= self.ph_band[1]:
                self.ph_in_band_s += dt_s
            if "gypsum_purity" in truth:
                g, s = truth["gypsum_purity"], truth["sulfite_mass_frac"]
                self.purity_lo = min(self.purity_lo, g)
                self.sulfite_hi = max(self.sulfite_hi, s)
                self.ox_lo = min(self.ox_lo, truth["oxidation_frac"])
                w = truth.get("so2_absorbed_kmol_s", 0.0) * dt_s   # gypsum made meanwhile
                self.purity_w += w
                self.purity_wsum += w * g
                if g < self.gypsum_min or s > self.sulfite_max:
                    self.offspec_s += dt_s
        self.t_s += dt_s

    def _emission(self, t_s, dt_s, c, o2, truth):
        if truth.get("cems_fault"):
            c = None   # the stack analyzer failed: the CEMS has no value
        c6 = self.hourly.add(t_s, dt_s, c, o2, excluded=bool(truth.get("cems_excluded")))
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
            em = self.hourly.summary()
            name = "nox" if self.plant == "scr" else "so2"

            def rnd(x):
                return round(x, 3) if x is not None else None
            r[name + "_hourly_max_mg_nm3"] = rnd(em["hourly_max"])
            r[name + "_exceed_hours"] = em["exceed_hours"]
            r[name + "_violation_mg_nm3_h"] = rnd(em["violation_h"])
            r[name + "_hours_valid"] = em["hours_valid"]
            r[name + "_hours_invalid"] = em["hours_invalid"]
            r[name + "_minutes_excluded"] = em["minutes_excluded"]
            r[name + "_halfhour_max_mg_nm3"] = rnd(em["halfhour_max"])
            r[name + "_exceed_halfhours"] = em["exceed_halfhours"]
            r[name + "_daily_max_mg_nm3"] = rnd(max(em["daily_means"])) if em["daily_means"] else None
            r[name + "_days_invalid"] = em["days_invalid"]
            r[name + "_exceed_days"] = em["exceed_days"]
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
            if math.isfinite(self.purity_lo):
                r["gypsum_purity_min_pct"] = round(100.0 * self.purity_lo, 3)
                r["gypsum_purity_mean_pct"] = round(
                    100.0 * self.purity_wsum / self.purity_w, 3) if self.purity_w else None
                r["sulfite_max_pct"] = round(100.0 * self.sulfite_hi, 4)
                r["oxidation_min_frac"] = round(self.ox_lo, 5)
                r["gypsum_offspec_h"] = round(self.offspec_s / 3600.0, 3)
        if wall_s is not None:
            r["wall_s"] = round(wall_s, 3)
            r["computational_time_ratio"] = round(wall_s / max(self.t_s, 1e-9), 8)
        return r
