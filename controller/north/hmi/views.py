"""What the HMI's pages and JSON API show, built from the data hub's latest
state, the config and the alarm engine (no I/O, no aiohttp: testable alone).

Units: values as the register map gives them (firmware/regmap.py, unit per
point); ages in wall seconds; plant time (t_s) as the runtime's clock gives it.
"""

import math

from controller.registers import point_map
from firmware import regmap

QUALITY = {regmap.Q_GOOD: "good", regmap.Q_UNCERTAIN: "uncertain", regmap.Q_BAD: "bad",
           regmap.Q_NOT_WIRED: "not wired"}


def measured(p):
    return p.table == regmap.INPUT and p.address >= regmap.MEAS_BASE and p.count == 1


def areas(cfg):
    """{device: area}: the loop that drives the device, else "Unassigned"
    (the OPC UA server's default areas)."""
    out = {}
    for dn in cfg.devices:
        loops = [ln for ln, lc in cfg.loops.items() if dn in lc.devices.values()]
        out[dn] = loops[0] if loops else "Unassigned"
    return out


def num(v):
    """A JSON-safe number (NaN and inf are null)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def stale_limits(cfg):
    """{(device, point): (s, slotted)}: the age after which a reading counts as
    stale (stale_s, plus the device's slow_s for the points it reads on its
    slow schedule: settings, counters), and whether the point has an NE43
    quality slot. The process image publishes a reading older than stale_s
    as Q_BAD; for a point without a slot that can only mean "old", so a slow
    point read on schedule shows good, not bad, between its reads."""
    from controller.fieldbus.planner import plan_reads
    out = {}
    for dn, dc in cfg.devices.items():
        for r in plan_reads(dc.profile):
            for p, _ in r.points:
                out[(dn, p.name)] = (cfg.stale_s + (dc.slow_s if r.cls == "slow"
                                                    else dc.poll_s), measured(p))
    return out


def live_table(cfg):
    """{device: {point: (tag, clock, limit)}}: what live_points() needs of
    each point, worked out once. limit: stale_limits()'s (s, slotted);
    the clock: the points of one read share its time, so the live frame
    keeps one sample time per read ("device/k", k the read's index in the
    device's plan) and a new read of unchanged values sends that one time,
    not every value again."""
    from controller.fieldbus.planner import plan_reads
    limits = stale_limits(cfg)
    out = {}
    for dn, dc in cfg.devices.items():
        tab = out[dn] = {}
        for k, r in enumerate(plan_reads(dc.profile)):
            for p, _ in r.points:
                tab[p.name] = ("%s.%s" % (dn, p.name), "%s/%d" % (dn, k), limits[(dn, p.name)])
    return out


def quality(up, q, age, limit, stale_s=None):
    """good | uncertain | bad | not wired | stale | down. limit:
    stale_limits()'s (s, slotted), or a number of s."""
    lim, slotted = limit if isinstance(limit, tuple) else (limit, True)
    if not up:
        return "down"
    if age is not None and age > lim:
        return "stale"
    if not slotted and q == regmap.Q_BAD and stale_s is not None and age is not None \
            and age > stale_s:
        return "good"      # old by the image's stale_s only, fresh by its own schedule
    return QUALITY.get(q, "bad")


def point_state(up, val, q, src, now, limit, stale_s=None):
    """[value, quality, age_s] (quality()'s)."""
    age = max(0.0, now - src) if src is not None else None
    return [num(val), quality(up, q, age, limit, stale_s),
            None if age is None else round(age, 1)]


def live_points(cfg, devices, now, table):
    """({"dev.point": [value, quality, clock]}, {clock: sample wall s, to 0.1 s})
    for every number the hub carries: a point's age is now - times[clock].
    table: live_table(cfg) (a point not in it is its own clock)."""
    pts, times = {}, {}
    stale_s = cfg.stale_s
    isfinite = math.isfinite
    for dn, dv in devices.items():
        up = dv.get("up", False)
        tab = table.setdefault(dn, {})
        for p, (val, q, src) in dv.get("points", {}).items():
            e = tab.get(p)
            if e is None:
                tag = "%s.%s" % (dn, p)
                e = tab[p] = (tag, tag, stale_s)
            tag, c, lim = e
            qs = quality(up, q, None if src is None else now - src, lim, stale_s)
            pts[tag] = [val if val.__class__ is float and isfinite(val) else num(val), qs, c]
            if c not in times:
                times[c] = None if src is None else round(src, 1)
    return pts, times


def api_points(points, times, now):
    """The JSON API's {"dev.point": [value, quality, age_s]} of live_points()."""
    out = {}
    for tag, (val, qs, c) in points.items():
        t = times.get(c)
        out[tag] = [val, qs, None if t is None else round(max(0.0, now - t), 1)]
    return out


def loop_state(v):
    return {"mode": v.get("mode"), "manual": bool(v.get("manual")), "runs": v.get("runs"),
            "errors": v.get("errors"), "held": v.get("held"),
            "op": {r: {k: num(x) for k, x in c.items()} for r, c in (v.get("cmds") or {}).items()},
            "sp": {k: num(x) for k, x in (v.get("process") or {}).items()}}


def kpi_view(cfg, kpis, hmi, since, plant_s):
    """Energy, CO2, the saving against baseline_kw and the emissions. since:
    (energy_kwh, plant s) when the HMI first saw the energy counter: the saving
    compares the energy used since then with baseline_kw over the same plant
    hours (the counter itself carries over restarts; the run's hours do not)."""
    acc = cfg.accounting
    k = kpis or {}
    out = {"energy_kwh": num(k.get("energy_kwh")), "co2_kg": num(k.get("co2_kg")),
           "baseline_kw": hmi.get("baseline_kw"), "since_h": None, "used_kwh": None,
           "baseline_kwh": None, "saving_pct": None, "emissions": []}
    if since is not None and out["energy_kwh"] is not None:
        out["since_h"] = (plant_s - since[1]) / 3600.0
        out["used_kwh"] = out["energy_kwh"] - since[0]
        if hmi.get("baseline_kw") and out["since_h"] > 0:
            base = hmi["baseline_kw"] * out["since_h"]
            out["baseline_kwh"] = base
            out["saving_pct"] = 100.0 * (1.0 - out["used_kwh"] / base)
    for key in ("nox", "so2"):
        if acc.get(key + "_point") is None:
            continue
        out["emissions"].append({
            "pollutant": key.upper(), "unit": "mg/Nm3 at %g %% O2" % acc["o2_ref_pct"],
            "open_hour_mean": num(k.get("%s_open_mean_mg_nm3" % key)),
            "limit": acc["%s_limit_mg_nm3" % key],
            "exceed_hours": num(k.get("%s_exceed_hours" % key))})
    return out


def overview(cfg, devices, loops, now):
    """[{area, loops: [...], devices: [{name, profile, up, points: [{tag, name, unit}]}]}]."""
    by_area = {}
    for dn, a in areas(cfg).items():
        by_area.setdefault(a, []).append(dn)
    out = []
    for a, dns in by_area.items():
        devs = []
        for dn in dns:
            dc = cfg.devices[dn]
            pm = point_map(dc.profile)
            have = devices.get(dn, {}).get("points", {})
            pts = [{"tag": "%s.%s" % (dn, p.name), "name": p.name, "unit": p.unit or ""}
                   for p in pm.values() if measured(p) and (p.name in have or not have)]
            devs.append({"name": dn, "profile": dc.profile, "points": pts})
        out.append({"area": a, "loops": [ln for ln in cfg.loops if ln == a], "devices": devs})
    return out


def faceplate(cfg, runner, hub_state, devices, now, limits):
    """One loop's faceplate: SP, PV, OP, mode, the manual outputs' ranges, the
    parameters (engineer)."""
    from controller.loops import SETPOINTS, strategy_class
    lc = runner.cfg
    st = loop_state(hub_state or {})
    outputs, pvs = [], []
    for role, dn in lc.devices.items():
        prof = cfg.devices[dn].profile
        pm = point_map(prof)
        for cmd, _safe, fb in regmap.outputs(prof):
            p = pm[cmd]
            outputs.append({"role": role, "point": cmd, "unit": p.unit or "", "min": p.min,
                            "max": p.max, "bit": p.type == "bit",
                            "value": st["op"].get(role, {}).get(cmd), "feedback": fb})
        dv = devices.get(dn, {})
        for fb in [o[2] for o in regmap.outputs(prof)] + ["process_pv"]:
            if fb in dv.get("points", {}):
                val, q, src = dv["points"][fb]
                pvs.append({"role": role, "point": fb, "unit": (pm[fb].unit or ""),
                            "state": point_state(dv.get("up"), val, q, src, now,
                                                 limits.get((dn, fb), cfg.stale_s),
                                                 cfg.stale_s)})
    ranges = SETPOINTS.get(lc.plant, {})
    sps = []
    for key, val in st["sp"].items():
        if key in ranges:
            lo, hi_key = ranges[key]
            sps.append({"key": key, "value": val, "min": lo,
                        "max": num(runner.process.get(hi_key))})
    for key, v in lc.process.items():   # set points that follow a device point (read-only)
        if isinstance(v, tuple) and key in ranges:
            sps.append({"key": key, "source": "%s.%s" % v, "fixed": True})
    cls = strategy_class(lc.plant, lc.strategy)
    strat = runner.strategy
    params = dict(strat.params)
    # a parameter the config left out is the strategy's default (its class constant)
    return {"name": lc.name, "plant": lc.plant, "strategy": lc.strategy, "group": lc.group,
            "devices": dict(lc.devices), "state": st, "setpoints": sps, "outputs": outputs,
            "pv": pvs, "params": [{"name": n, "value": num(params.get(n, getattr(
                strat, n.upper(), None)))} for n in cls.PARAMS]}


def device_rows(cfg, status, last_event):
    st = (status or {}).get("devices", {})
    lines = (status or {}).get("lines", {})
    out = []
    for dn, dc in cfg.devices.items():
        s = st.get(dn, {})
        ls = lines.get(dc.line, {})
        out.append({"name": dn, "line": dc.line, "unit": dc.unit, "profile": dc.profile,
                    "up": s.get("up"), "identity_ok": s.get("identity_ok"),
                    "polls": s.get("polls"), "up_events": s.get("up_events"),
                    "down_events": s.get("down_events"), "writes_refused": s.get("writes_refused"),
                    "heartbeats": s.get("heartbeats"),
                    "line_utilisation": num(ls.get("utilisation")),
                    "last_error": last_event.get(dn)})
    return out


def limits_of(cfg, alarm_rows_defs, tag):
    """[(label, value)] of the limits drawn on a trend of tag: limit alarms on
    the point (hi / lo) and the emission limit of the accounting's point."""
    out = []
    for d in alarm_rows_defs:
        if d.kind == "limit" and "%s.%s" % (d.device, d.point) == tag:
            if d.hi is not None:
                out.append(("%s hi" % d.id, d.hi))
            if d.lo is not None:
                out.append(("%s lo" % d.id, d.lo))
    acc = cfg.accounting
    for key in ("nox", "so2"):
        ref = acc.get(key + "_point")
        if ref is not None and "%s.%s" % tuple(ref) == tag:
            out.append(("%s limit" % key.upper(), acc["%s_limit_mg_nm3" % key]))
    return out
