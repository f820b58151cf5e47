"""Live accounting: energy per device from measured power, CO2 from the grid
factor, and each stack's clock-hour emission means at the reference O2 with
exceedance hours, from the process image's good values.

The hourly means are controller.accounting.EmissionHours, the same code the
simulator's KPI frame uses: a figure on the live status line and in the
results tables is computed one way. A value that is bad, stale or from a down
device is a gap (time passes, nothing is added). The analyzer's own status
discretes, where the stack point's device has them (EXCLUDE_POINTS: blow-back,
calibration; FAULT_POINTS: analyzer fault), make the time excluded or a gap, as
a CEMS data system does (docs/emissions.md): an hour counts with at least 75 %
valid minutes, invalid hours are reported (`<key>_hours_invalid`).
"""

from controller.accounting import EmissionHours


EXCLUDE_POINTS = ("analyzer_blowback", "analyzer_cal")
FAULT_POINTS = ("analyzer_fault", "so2_analyzer_fault")


class LiveAccounting:
    def __init__(self, cfg, devices):
        self.cfg = cfg
        # Every real-power point of a device counts (power_kw of a drive; an
        # FGD's pump and blower powers).
        power = {d: [p for p in dev.points if p.endswith("power_kw")] for d, dev in devices.items()}
        self.power = {d: ps for d, ps in power.items() if ps}
        self.kwh = {d: 0.0 for d in self.power}
        self.em = {}
        for key in ("nox", "so2"):
            ref = cfg.get(key + "_point")
            if ref:
                self.em[key] = (ref, cfg[key + "_o2_point"],
                                EmissionHours(cfg[key + "_limit_mg_nm3"], cfg.get("o2_ref_pct", 6.0)))
        # The analyzer status discretes of each stack point's device.
        self.status = {}
        for key, (ref, _, _) in self.em.items():
            pts = getattr(devices.get(ref[0]), "points", ()) or ()
            self.status[key] = ([(ref[0], p) for p in EXCLUDE_POINTS if p in pts],
                                [(ref[0], p) for p in FAULT_POINTS if p in pts])

    def add(self, t_s, dt_s, value):
        """value(device, point) -> float or None, over [t_s - dt_s, t_s)."""
        if dt_s <= 0 or t_s < 0:
            return
        for d, pts in self.power.items():
            for name in pts:
                p = value(d, name)
                if p is not None:
                    self.kwh[d] += p * dt_s / 3600.0
        for key, (ref, o2ref, hours) in self.em.items():
            excl, fault = self.status[key]
            on = [value(*p) for p in excl + fault]
            on = [v is not None and v > 0.5 for v in on]
            c = value(*ref)
            if any(on[len(excl):]):
                c = None   # the analyzer reports a fault: no value
            hours.add(t_s - dt_s, dt_s, c, value(*o2ref), excluded=any(on[:len(excl)]))

    def kpis(self):
        total = sum(self.kwh.values())
        out = {"energy_kwh": total, "co2_kg": total * self.cfg["grid_kg_co2_per_kwh"]}
        for d, v in self.kwh.items():
            out["energy_kwh.%s" % d] = v
        for key, (_, _, h) in self.em.items():
            out["%s_exceed_hours" % key] = h.exceed_hours()
            out["%s_hours" % key] = len(h.closed)
            out["%s_hours_invalid" % key] = h.invalid_hours()
            cur, valid_s = h.current()
            last = next((p.mean for p in reversed(h.closed) if p.mean is not None), None)
            out["%s_hour_mean_mg_nm3" % key] = cur if cur is not None else last
            # The open hour alone (the alarm engine projects it to the hour's end).
            out["%s_open_mean_mg_nm3" % key] = cur
            out["%s_open_valid_s" % key] = valid_s
            # The last closed hour as the CEMS rules counted it (mean None: invalid),
            # its start (plant s, Unix time on a plant) last: the site report
            # takes these (docs/site.md) and never averages raw values itself.
            p = h.closed[-1] if h.closed else None
            out["%s_limit_mg_nm3" % key] = h.limit
            out["%s_last_hour_mean_mg_nm3" % key] = p.mean if p else None
            out["%s_last_hour_exceeded" % key] = (
                None if p is None or p.mean is None else float(p.mean > h.limit))
            out["%s_last_hour_start_s" % key] = p.start_s if p else None
        return out

    def capture(self):
        return {"kwh": dict(self.kwh), "em": {k: h.capture() for k, (_, _, h) in self.em.items()}}

    def restore(self, saved):
        for d, v in saved.get("kwh", {}).items():
            if d in self.kwh:
                self.kwh[d] = v
        for k, e in saved.get("em", {}).items():
            if k in self.em and isinstance(e, dict) and "open" in e:
                self.em[k][2].restore(e)
