"""northbound-jitter: does the Sparkplug B edge node change the control cycle's
timing at 5,000 tags?

The real service (`Service`) with a 50 ms loop group of 8 fan loops, polling 90
motor devices (56 single-value points each: 5,040 tags) on two in-process fake
lines (hil_tests/fakeline.py, 1 ms a transaction), the drives' physics stepped
every 50 ms so every noisy point changes; once with the edge node publishing
every change (deadband 0) to a Debian mosquitto on loopback, once without it
(the named peer), runs alternated so the machine's load hits both alike.
Jitter = cycle start - scheduled start (the service's own group statistics).

python bench/run.py northbound-jitter [--quick] [--json]
"""

import asyncio
import tempfile
import textwrap
import time
from pathlib import Path

N_DEV = 90
N_LOOPS = 8
PERIOD_MS = 50


def _plant(tmp, port):
    text = ("[service]\nname = 'bench'\nstate_dir = '%s'\n[lines.a]\nkind = 'rtu'\n"
            "port = '/dev/null'\nbaud = 115200\n[lines.b]\nkind = 'rtu'\nport = '/dev/null'\n"
            "baud = 115200\n[groups.drives]\nperiod_ms = %d\n" % (tmp, PERIOD_MS))
    for u in range(1, N_DEV + 1):
        text += textwrap.dedent("""
            [devices.d{u}]
            line = "{line}"
            unit = {u}
            profile = "motor"
            """).format(u=u, line="a" if u % 2 else "b")
    for u in range(1, N_LOOPS + 1):
        text += textwrap.dedent("""
            [loops.f{u}]
            plant = "fan"
            group = "drives"
            devices = {{ drive = "d{u}" }}
            process = {{ flow_sp_m3s = 25.0, flow_design_m3s = 50.0 }}
            params = {{ period_s = {p} }}
            """).format(u=u, p=PERIOD_MS / 1000.0)
    if port is not None:
        text += '[mqtt]\nbroker = "mqtt://127.0.0.1:%d"\n' % port
    (tmp / "plant.toml").write_text(text)
    from controller.config import load_config
    return load_config(tmp / "plant.toml")


def _run(tmp, seconds, port):
    from controller.runtime.service import Service, build_lines
    from hil_tests.fakeline import FakeBus, FakeDevice
    cfg = _plant(tmp, port)
    bus = FakeBus([FakeDevice("motor", u) for u in range(1, N_DEV + 1)], latency_s=0.001)
    svc = Service(cfg, live=False, historian=False,
                  lines=build_lines(cfg, None, client_factory=bus.client))
    node = {}

    async def main():
        async def physics():
            while True:
                bus.advance(PERIOD_MS / 1000.0)
                await asyncio.sleep(PERIOD_MS / 1000.0)
        ph = asyncio.create_task(physics())
        task = asyncio.create_task(svc.run(seconds))
        while not task.done():
            if svc.north:
                node["n"] = svc.north[0]
            await asyncio.sleep(0.2)
        ph.cancel()
        return await task
    c0 = time.process_time()
    st = asyncio.run(main())
    cpu = time.process_time() - c0
    g = st["groups"]["drives"]
    out = {k: g[k] for k in ("cycles", "overruns", "jitter_p50_ms", "jitter_p99_ms",
                             "jitter_max_ms", "exec_p99_ms")}
    out["cpu_s"] = cpu
    if "n" in node:
        s = node["n"].stats()
        out.update(metrics_sent=s["sent"]["metrics"], ddata=s["sent"]["DDATA"],
                   buffered=s["buffered"], publish_s=s["publish_s"])
    return out


def run(quick=False):
    from bench.northbound_bench import _mosquitto
    from controller.registers import point_map
    seconds, rounds = (4.0, 1) if quick else (8.0, 3)
    proc, port = _mosquitto()
    runs = {"with_sparkplug": [], "without": []}
    try:
        for r in range(rounds):
            for name in (("with_sparkplug", "without") if r % 2 == 0
                         else ("without", "with_sparkplug")):
                with tempfile.TemporaryDirectory() as d:
                    runs[name].append(_run(Path(d), seconds,
                                           port if name == "with_sparkplug" else None))
    finally:
        proc.terminate()
        proc.wait(10)
    tags = N_DEV * len([p for p in point_map("motor").values() if p.count == 1])
    res = {"tags": tags, "seconds": seconds, "runs": runs}
    for name, rs in runs.items():
        res[name + "_jitter_p99_ms_median"] = sorted(x["jitter_p99_ms"] for x in rs)[len(rs) // 2]
    w = runs["with_sparkplug"]
    res["sparkplug_tags_per_s"] = sorted(x["metrics_sent"] / seconds for x in w)[len(w) // 2]
    return res


def report(r):
    lines = []
    for name, rs in r["runs"].items():
        for g in rs:
            lines.append("%-15s cycles %4d overruns %d jitter p50 %.2f p99 %.2f max %.2f ms, "
                         "exec p99 %.2f ms, CPU %.1f s%s" % (
                             name, g["cycles"], g["overruns"], g["jitter_p50_ms"],
                             g["jitter_p99_ms"], g["jitter_max_ms"], g["exec_p99_ms"], g["cpu_s"],
                             "; Sparkplug %d metrics in %d DDATA"
                             % (g["metrics_sent"], g["ddata"])
                             if "metrics_sent" in g else ""))
    lines.append("%d tags, %.0f s runs: jitter p99 (median of runs) with the Sparkplug edge node "
                 "%.2f ms, without %.2f ms; it published %.0f tag updates/s"
                 % (r["tags"], r["seconds"], r["with_sparkplug_jitter_p99_ms_median"],
                    r["without_jitter_p99_ms_median"], r["sparkplug_tags_per_s"]))
    return "\n".join(lines)
