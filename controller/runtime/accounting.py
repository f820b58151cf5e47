"""Live accounting: energy per device from measured power, CO2 from the grid
factor, and each stack's clock-hour emission means at the reference O2 with
exceedance hours, from the process image's good values.

The hourly means are controller.accounting.EmissionHours, the same code the
simulator's KPI frame uses: a figure on the live status line and in the
results tables is computed one way. A value that is bad, stale or from a down
device is a gap (time passes, nothing is added).
"""

from controller.accounting import EmissionHours


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

    def add(self, t_s, dt_s, value):
        """value(device, point) -> float or None, over [t_s - dt_s, t_s)."""
        if dt_s <= 0 or t_s < 0:
            return
        for d, pts in self.power.items():
            for name in pts:
                p = value(d, name)
                if p is not None:
                    self.kwh[d] += p * dt_s / 3600.0
        for ref, o2ref, hours in self.em.values():
            hours.add(t_s - dt_s, dt_s, value(*ref), value(*o2ref))

    def kpis(self):
        total = sum(self.kwh.values())
        out = {"energy_kwh": total, "co2_kg": total * self.cfg["grid_kg_co2_per_kwh"]}
        for d, v in self.kwh.items():
            out["energy_kwh.%s" % d] = v
        for key, (_, _, h) in self.em.items():
            out["%s_exceed_hours" % key] = h.exceed_hours()
            out["%s_hours" % key] = len(h.closed)
            cur, valid_s = h.current()
            last = next((m for _, m in reversed(h.closed) if m is not None), None)
            out["%s_hour_mean_mg_nm3" % key] = cur if cur is not None else last
            # The open hour alone (the alarm engine projects it to the hour's end).
            out["%s_open_mean_mg_nm3" % key] = cur
            out["%s_open_valid_s" % key] = valid_s
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
