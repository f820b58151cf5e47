"""alarms: what the alarm engine costs the service.

1. One engine pass (AlarmEngine.pump: drain the hub, evaluate every alarm)
   for examples/plant.toml's alarms (the profile defaults of its 7 devices and
   4 loops, its emission point, the service, and its [[alarms]] entries) with a
   healthy plant on the hub, every device republished before each pass (the
   worst case: every device polled since the last pass). Median and p99 in us.
2. Cycle timing of the real service (`Service`, 50 ms loop group of 8 fan
   loops on the in-process fake line, 1 ms a transaction) with its alarm
   engine, beside the same service with the engine taken out of housekeeping
   (the named peer), runs alternated so the machine's load hits both alike;
   and the engine's pass as the running service spends it. The engine runs in
   housekeeping's pass after a cycle, never inside one.
"""

import asyncio
import tempfile
import textwrap
import time
from pathlib import Path

from controller.alarms.engine import AlarmEngine
from controller.config import load_config
from controller.registers import point_map
from controller.runtime.hub import Hub
from controller.stats import quantile_ms
from firmware import regmap

ROOT = Path(__file__).resolve().parent.parent


class _Clock:
    speedup = 1.0

    def __init__(self):
        self.t = 3.6e6

    def plant_s(self):
        return self.t


def engine_pass(n=2000):
    cfg = load_config(ROOT / "examples" / "plant.toml")
    hub, clock = Hub(), _Clock()
    eng = AlarmEngine(cfg, hub, None, clock)
    pts = {dn: {p.name: (p.default if p.default is not None else 1.0)
                for p in point_map(dc.profile).values() if p.count == 1}
           for dn, dc in cfg.devices.items()}
    for dn, v in pts.items():
        for p in point_map(cfg.devices[dn].profile).values():
            if p.type == "bit":
                v[p.name] = 0.0           # no fault input set
        v.update(status=regmap.ST_ARMED, interlocks=0, comm_loss_trips=0)
        if cfg.devices[dn].profile == "compressor":
            v["discharge_pressure_bar"] = 7.0
        if cfg.devices[dn].profile == "scr":
            v.update(flue_gas_temp_c=340.0, flue_gas_flow_nm3h=5e5, nh3_slip_ppm=1.0,
                     o2_pct=6.0, nox_out_mg_nm3=30.0)
    times = []
    for i in range(n):
        clock.t += 0.2
        w = time.time()
        for dn, v in pts.items():
            hub.publish("device", dn, {"up": True, "points": {
                p: (float(x) + 1e-3 * (i % 2), regmap.Q_GOOD, w) for p, x in v.items()}})
        for ln in cfg.loops:
            hub.publish("loop", ln, {"mode": "auto", "manual": False, "errors": 0, "held": 0,
                                     "runs": i, "t_s": clock.t})
        hub.publish("kpi", "kpis", {"nox_hours": 0, "nox_exceed_hours": 0,
                                    "nox_open_mean_mg_nm3": 30.0, "nox_open_valid_s": 100.0})
        hub.publish("status", "service", {"devices": {d: {"identity_ok": True} for d in pts},
                                          "groups": {"process": {"overruns": 0}},
                                          "historian": {"error": None, "dropped_rows": 0,
                                                        "db_mb": 1.0}})
        t0 = time.perf_counter()
        eng.pump()
        times.append(time.perf_counter() - t0)
    bad = [a.d.id for a in eng.alarms.values() if a.state != "normal"]
    return {"alarms": len(eng.alarms), "passes": n, "pass_p50_us": 1000 * quantile_ms(times, 0.5),
            "pass_p99_us": 1000 * quantile_ms(times, 0.99),
            "per_alarm_p50_us": 1000 * quantile_ms(times, 0.5) / len(eng.alarms),
            "not_normal": bad}


N = 8
PERIOD_MS = 50


def _plant(tmp):
    text = "[service]\nname = 'bench'\n[lines.l1]\nkind = 'tcp'\nhost = '127.0.0.1'\n"
    text += "[groups.drives]\nperiod_ms = %d\n[historian]\ncommit_s = 1.0\n" % PERIOD_MS
    for u in range(1, N + 1):
        text += textwrap.dedent("""
            [devices.d{u}]
            line = "l1"
            unit = {u}
            profile = "motor"
            [loops.f{u}]
            plant = "fan"
            group = "drives"
            devices = {{ drive = "d{u}" }}
            process = {{ flow_sp_m3s = 25.0, flow_design_m3s = 50.0 }}
            params = {{ period_s = {p} }}
            """).format(u=u, p=PERIOD_MS / 1000.0)
    (tmp / "plant.toml").write_text(text)
    return load_config(tmp / "plant.toml")


def _service_run(tmp, seconds, alarms):
    from hil_tests.fakeline import fake_service
    cfg = _plant(tmp)
    svc = fake_service(cfg, range(1, N + 1))
    pumps = []
    if not alarms:
        svc.sinks = [s for s in svc.sinks if s is not svc.alarms and
                     type(s).__name__ != "AlarmRecorder"]
        svc.gate.alarms = None
    else:
        pump = svc.alarms.pump

        def timed():     # the engine's pass inside the running service's housekeeping
            t0 = time.perf_counter()
            pump()
            pumps.append(time.perf_counter() - t0)
        svc.alarms.pump = timed
    st = asyncio.run(svc.run(seconds))
    g = st["groups"]["drives"]
    out = {k: g[k] for k in ("cycles", "overruns", "jitter_p50_ms", "jitter_p99_ms",
                             "jitter_max_ms", "exec_p99_ms")}
    if pumps:
        out.update(pump_p50_us=1000 * quantile_ms(pumps, 0.5),
                   pump_p99_us=1000 * quantile_ms(pumps, 0.99),
                   pump_max_us=1000 * quantile_ms(pumps, 1.0), pumps=len(pumps))
    return out, st["alarms"]


def run(quick=False):
    res = {"engine": engine_pass(300 if quick else 3000)}
    seconds, rounds = (3.0, 1) if quick else (8.0, 3)
    runs = {"with_alarms": [], "without": []}
    for r in range(rounds):
        for name in (("with_alarms", "without") if r % 2 == 0 else ("without", "with_alarms")):
            with tempfile.TemporaryDirectory() as d:
                g, summary = _service_run(Path(d), seconds, name == "with_alarms")
            runs[name].append(g)
            if name == "with_alarms":
                res["service_alarm_summary"] = summary
    res["service"] = runs
    for name, rs in runs.items():
        res[name + "_jitter_p99_ms_median"] = sorted(x["jitter_p99_ms"] for x in rs)[len(rs) // 2]
    return res


def report(r):
    e = r["engine"]
    lines = ["alarm engine pass, examples/plant.toml (%d alarms, %d passes): p50 %.0f us, "
             "p99 %.0f us (%.2f us per alarm); not normal: %s"
             % (e["alarms"], e["passes"], e["pass_p50_us"], e["pass_p99_us"],
                e["per_alarm_p50_us"], ", ".join(e["not_normal"]) or "none")]
    for name, rs in r["service"].items():
        for g in rs:
            lines.append("service %-12s cycles %5d overruns %d jitter p50 %.2f p99 %.2f max %.2f ms"
                         " exec p99 %.2f ms%s" % (
                             name, g["cycles"], g["overruns"], g["jitter_p50_ms"],
                             g["jitter_p99_ms"], g["jitter_max_ms"], g["exec_p99_ms"],
                             "; engine pass in housekeeping p50 %.0f p99 %.0f max %.0f us (%d)"
                             % (g["pump_p50_us"], g["pump_p99_us"], g["pump_max_us"], g["pumps"])
                             if "pumps" in g else ""))
    lines.append("jitter p99 (median of runs): with alarms %.2f ms, without %.2f ms"
                 % (r["with_alarms_jitter_p99_ms_median"], r["without_jitter_p99_ms_median"]))
    return "\n".join(lines)
