"""plants: simulated seconds per wall second for each plant over its standard
24 h scenario (plant stepping and measuring every 1 s with fixed actuator
commands), beside a pure-Python/scipy solve_ivp implementation of the same
model (peer) run over the first hour of the same scenario in the same run."""

import time

from bench.peers import scipy_plants as peer
from hil_tests.plants import plant_class
from hil_tests.scenario import load_scenario

COMMANDS = {
    "fan": {"drive": {"run_cmd": 1, "speed_ref_pct": 75.0, "damper_cmd_pct": 100.0}},
    "pump": {"drive": {"run_cmd": 1, "speed_ref_pct": 80.0, "damper_cmd_pct": 100.0}},
    "compressor": {"c1": {"run_cmd": 1, "load_cmd": 1}, "c2": {"run_cmd": 1, "load_cmd": 1},
                   "vsd": {"run_cmd": 1, "load_cmd": 1, "speed_ref_pct": 60.0}},
    "scr": {"scr": {"dosing_enable": 1, "valve_cmd_pct": 40.0}},
    "fgd": {"fgd": {"pump1_run": 1, "pump2_run": 1, "pump3_run": 1, "pump4_run": 1,
                    "feeder_cmd_pct": 45.0, "blower_cmd_pct": 80.0}},
}


def greenedge(plant, hours):
    cls = plant_class(plant)
    sc = load_scenario("%s_standard" % plant, cls.SPEC, hours=hours)
    pl = cls(plant, sc)
    for dev, pts in COMMANDS[plant].items():
        for k, v in pts.items():
            pl.actuate(dev, k, v)
    n = int(hours * 3600)
    t0 = time.perf_counter()
    for k in range(n):
        pl.step(float(k), 1.0)
        pl.measure()
    return n / (time.perf_counter() - t0)


def scipy_peer(plant, hours):
    cls = plant_class(plant)
    sc = load_scenario("%s_standard" % plant, cls.SPEC, hours=hours)
    n = int(hours * 3600)
    t0 = time.perf_counter()
    if plant == "scr":
        m = peer.ScrIvp()
        for k in range(n):
            load_pct = sc.profiles["load_pct"](k)
            T = 330 + 40 * (load_pct / 100 - 0.5) / 0.5 + 273.15
            F = 2e6 * load_pct / 100 / 3600 * T / 273.15
            cno = sc.profiles["nox_in_mg_nm3"](k) / 1000 / 46.0055 * 273.15 / T
            m.step(1.0, F, T, cno, 160.0 / 3600 / 0.017031 / F)
    elif plant == "fgd":
        m = peer.FgdIvp()
        for k in range(n):
            q = 2e6 * sc.profiles["load_pct"](k) / 100
            m.step(1.0, 0.018, sc.profiles["so2_in_mg_nm3"](k) * 1e-6 * q / 3600 / 64.066, 4)
    elif plant == "compressor":
        m = peer.HeaderIvp()
        for k in range(n):
            m.step(1.0, 38.0 / 60, sc.profiles["demand_frac"](k) * 58 / 60, 8.7 / 60, 8.01325)
    else:
        m = peer.SpeedIvp()
        for k in range(n):
            sc.profiles["demand"](k)
            m.step(1.0, 0.75)
    return n / (time.perf_counter() - t0)


def run(quick=False):
    plants = ("fan", "pump", "compressor", "scr", "fgd")
    hours, peer_hours = (2.0, 0.1) if quick else (24.0, 1.0)
    out = {"speedup": {}, "peer_speedup": {}, "hours": hours, "peer_hours": peer_hours,
           "peer": "pure Python + scipy.integrate.solve_ivp (RK45, rtol 1e-6) per 1 s interval"}
    for p in plants:
        out["speedup"][p] = round(greenedge(p, hours))
        out["peer_speedup"][p] = round(scipy_peer(p, peer_hours))
    out["ratio_vs_peer"] = {p: round(out["speedup"][p] / out["peer_speedup"][p], 1) for p in plants}
    out["day_wall_s"] = {p: round(86400 / out["speedup"][p], 2) for p in plants}
    return out


def report(r):
    lines = ["plant steppers: simulated s per wall s (standard scenario, 1 s steps)",
             "  plant        greenedge   scipy peer   ratio   24 h in"]
    for p in r["speedup"]:
        lines.append("  %-11s %10d %12d %7.1fx %7.2f s" % (p, r["speedup"][p], r["peer_speedup"][p],
                                                          r["ratio_vs_peer"][p], r["day_wall_s"][p]))
    return "\n".join(lines)
