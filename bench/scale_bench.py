"""scale: how the host service's cost grows with the plant (N devices).

The real service (controller.runtime.service.Service, historian on) polls N
motor devices for N in 8, 32, 128, 512, every device at poll_ms = POLL_MS, one
fan loop per device in a GROUP_MS loop group (a loop runs when its device has
a new poll), so the work per device is the same at every N. The field, per 32
devices (one line each, the RS-485 limit of 32 unit loads):

    group 1, 2    an RTU line at 115200 8N2 over a virtual RS-485 line with wire
                  timing (hil_tests/vline.py); real firmware processes (the
                  MicroPython unix port) while N <= FIRMWARE_MAX_N, above that
                  one pymodbus RTU server answering the 32 units
    group 3, 5    RTU over TCP: the project's transparent gateway (hil_tests/
                  gateway.py) in front of a virtual line and a pymodbus RTU server
    group 4, 6..  Modbus TCP gateways: pymodbus TCP servers, 32 units each

Every pymodbus-served device is a hil_tests.fakeline.FakeDevice: the firmware's
register map (firmware/regmap.py) answering as the firmware does (arming,
heartbeat, comm-loss trip, range checks, motor physics), in server processes
of their own (bench/scale_fleet.py), so the service's process holds only the
service. Its CPU (time.process_time of that process: every thread of it)
is counted over a window after every device is up and a warm-up.

Peer: in the same run and on the same devices, a plain pymodbus async loop in
its own process: one task per line or gateway, reading the same blocks the
planner produces (fast blocks every poll, the status block when 0.5 s old, the
slow blocks every 5 s, the device's schedule in master.py) at the same poll
period, and nothing else (no decoding, no loops, no writes, no historian).
The ratio is the service's CPU per poll over the peer's at each N.

Northbound (at N_NORTH): the same service with OPC UA (security None), the
Sparkplug B edge node publishing to a Debian mosquitto on loopback, and the
Prometheus exporter scraped once a second (from this process); tag updates =
OPC UA value writes + Sparkplug metrics published; CPU per 1,000 tag updates =
(CPU with the interfaces - CPU without them at that N) / updates. The HMI is
left out: with no browser attached it does no per-tag work, and with one the
cost is the browser's page rate, not the plant's size.

python bench/run.py scale [--quick] [--json]   (--quick: N = 8, 32, short windows)
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NS = (8, 32, 128, 512)
NS_QUICK = (8, 32)
PER_LINE = 32
BAUD = 115200
POLL_MS = 2000
GROUP_MS = 100
STATUS_S = 0.5   # Device.status_s
SLOW_S = 5.0     # Device.slow_s (the config default)
FIRMWARE_MAX_N = 128  # above this the RTU lines' devices are pymodbus servers: 64 firmware
# processes beside 448 served devices starve a 2-core host (polls/s fell by a third)
N_NORTH = 128
UP_TIMEOUT_S = 90.0
FLEET_GROUPS_PER_PROC = 8


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _free_port():
    from hil_tests.tcpserver import free_port
    return free_port()


def topology(n):
    """[(kind, devices)] of the lines for n devices, PER_LINE at most per line."""
    out = []
    k = 0
    while n > 0:
        m = min(PER_LINE, n)
        kind = "rtu" if k < 2 else ("rtu_tcp" if k in (2, 4) else "tcp")
        out.append((kind, m))
        n -= m
        k += 1
    return out


class Field:
    """The devices of one N: virtual lines, firmware processes, fleet processes.
    lines: [{name, kind, port | host+tcp_port, baud, units, firmware}]."""

    def __init__(self, n):
        from hil_tests.devices import DeviceProcess
        from hil_tests.vline import VirtualLine
        self.vlines, self.firmware, self.fleets, self.lines = [], [], [], []
        firmware = n <= FIRMWARE_MAX_N
        specs = []
        try:
            for k, (kind, m) in enumerate(topology(n)):
                ln = {"name": "l%d" % k, "kind": kind, "baud": BAUD, "units": m,
                      "firmware": kind == "rtu" and firmware}
                if kind == "rtu":
                    vl = VirtualLine((m if ln["firmware"] else 1) + 1, BAUD)
                    self.vlines.append(vl)
                    ln["port"] = vl.ports[0]
                    if ln["firmware"]:
                        with ThreadPoolExecutor(8) as ex:  # they start in parallel
                            self.firmware += list(ex.map(
                                lambda u: DeviceProcess("motor", u, vl.ports[u], BAUD, nice=10),
                                range(1, m + 1)))
                    else:
                        specs.append({"serial": [[vl.ports[1], BAUD, m]]})
                elif kind == "rtu_tcp":
                    vl = VirtualLine(2, BAUD)
                    self.vlines.append(vl)
                    ln["host"], ln["tcp_port"] = "127.0.0.1", _free_port()
                    specs.append({"rtu_tcp": [[vl.ports[1], vl.ports[0], BAUD, m,
                                               ln["tcp_port"]]]})
                else:
                    ln["host"], ln["tcp_port"] = "127.0.0.1", _free_port()
                    specs.append({"tcp": [[ln["tcp_port"], m]]})
                self.lines.append(ln)
            for i in range(0, len(specs), FLEET_GROUPS_PER_PROC):
                spec = {}
                for s in specs[i:i + FLEET_GROUPS_PER_PROC]:
                    for key, v in s.items():
                        spec.setdefault(key, []).extend(v)
                p = subprocess.Popen([sys.executable, "-m", "bench.scale_fleet", json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=str(ROOT), env=_env())
                self.fleets.append(p)
                if p.stdout.readline().strip() != "ready":
                    raise RuntimeError("bench scale: a fleet process did not start")
        except BaseException:
            self.close()
            raise

    def close(self):
        for p in self.fleets:
            try:
                p.stdin.close()
                p.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                p.kill()
                p.wait()
        for d in self.firmware:
            d.stop()
        for vl in self.vlines:
            vl.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def plant_toml(tmp, lines, north=None):
    text = "[service]\nname = 'scale'\nstate_dir = '%s'\n\n" % tmp
    for ln in lines:
        text += "[lines.%s]\nkind = '%s'\n" % (ln["name"], ln["kind"])
        if ln["kind"] == "rtu":
            text += "port = '%s'\nbaud = %d\nparity = 'N'\nstopbits = 2\n\n" % (ln["port"], BAUD)
        elif ln["kind"] == "rtu_tcp":
            text += ("host = '%s'\nport = %d\nbaud = %d\nparity = 'N'\nstopbits = 2\n\n"
                     % (ln["host"], ln["tcp_port"], BAUD))
        else:
            text += "host = '%s'\nport = %d\n\n" % (ln["host"], ln["tcp_port"])
    for ln in lines:
        for u in range(1, ln["units"] + 1):
            text += ("[devices.%s_%d]\nline = '%s'\nunit = %d\nprofile = 'motor'\npoll_ms = %d\n\n"
                     % (ln["name"], u, ln["name"], u, POLL_MS))
    text += "[groups.drives]\nperiod_ms = %d\n\n" % GROUP_MS
    for ln in lines:
        for u in range(1, ln["units"] + 1):
            text += ("[loops.f_%s_%d]\nplant = 'fan'\ngroup = 'drives'\n"
                     "devices = { drive = '%s_%d' }\n"
                     "process = { flow_sp_m3s = 25.0, flow_design_m3s = 50.0 }\n"
                     "params = { period_s = %g }\n\n" % (ln["name"], u, ln["name"], u,
                                                          GROUP_MS / 1000.0))
    text += "[historian]\npath = '%s/h.db'\n\n" % tmp
    if north:
        text += "[metrics]\nlisten = '127.0.0.1:%d'\n\n" % north["metrics"]
        text += ("[opcua]\nendpoint = 'opc.tcp://127.0.0.1:%d'\nsecurity = ['None']\n"
                 "anonymous = 'read'\n\n" % north["opcua"])
        text += "[mqtt]\nbroker = 'mqtt://127.0.0.1:%d'\n\n" % north["mqtt"]
    return text


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


# ---- child processes: the service, the peer ------------------------------------------
def child_service(cfg_path, warm_s, window_s):
    import asyncio
    from controller.config import load_config
    from controller.runtime.service import Service
    from firmware import regmap
    svc = Service(load_config(Path(cfg_path)), live=False)
    out = {}

    def totals():
        ls = svc.lines.values()
        return {"cpu_s": time.process_time(), "wall_s": time.perf_counter(),
                "polls": sum(d.polls for d in svc.devices.values()),
                "tx": sum(l.stats.tx for l in ls), "writes": sum(l.stats.writes for l in ls),
                "timeouts": sum(l.stats.timeouts for l in ls),
                "garbled": sum(l.stats.garbled for l in ls),
                "exceptions": sum(l.stats.exceptions for l in ls),
                "wire_s": {n: l.stats.wire_s for n, l in svc.lines.items() if l.serial},
                "loop_runs": sum(r.runs for r in svc.loops.values())}

    async def main():
        task = asyncio.create_task(svc.run())
        t_end = time.monotonic() + UP_TIMEOUT_S
        while time.monotonic() < t_end and not task.done() and not all(
                p.drivable() for p in svc.protocols.values()):
            await asyncio.sleep(0.2)
        out["up_wait_s"] = round(UP_TIMEOUT_S - (t_end - time.monotonic()), 1)
        await asyncio.sleep(warm_s)
        g = svc.groups["drives"]
        g.jitter.clear()
        g.exec_s.clear()
        c0, o0 = g.cycles, g.overruns
        north0 = [i.stats() if hasattr(i, "stats") else {} for i in svc.north]
        a = totals()
        await asyncio.sleep(window_s)
        b = totals()
        snap = g.snapshot()
        out.update({k: b[k] - a[k] for k in a if k != "wire_s"})
        out["line_utilisation"] = {n: round((b["wire_s"][n] - a["wire_s"][n]) / out["wall_s"], 3)
                                   for n in b["wire_s"]}
        out.update(cycles=g.cycles - c0, overruns=g.overruns - o0,
                   jitter_p50_ms=snap["jitter_p50_ms"], jitter_p99_ms=snap["jitter_p99_ms"],
                   jitter_max_ms=snap["jitter_max_ms"], exec_p99_ms=snap["exec_p99_ms"],
                   rss_mb=_rss_mb(), devices=len(svc.devices),
                   devices_up=sum(1 for d in svc.devices.values() if d.up),
                   armed=sum(1 for d in svc.devices.values()
                             if d.up and int(d.values.get("status", 0)) & regmap.ST_ARMED),
                   loops_auto=sum(1 for r in svc.loops.values() if r.mode == "auto"))
        north = {}
        for i, s0 in zip(svc.north, north0):
            name = type(i).__name__
            s1 = i.stats() if hasattr(i, "stats") else {}
            if name == "OpcUaServer":
                north["opcua_updates"] = s1["updates"] - s0["updates"]
            elif name == "SparkplugNode":
                north["sparkplug_metrics"] = s1["sent"].get("metrics", 0) - \
                    s0["sent"].get("metrics", 0)
                north["sparkplug_connected"] = s1["connected"]
            else:
                north.setdefault("other", []).append(name)
        if svc.north:
            out["north"] = north
        svc.stop()
        await task

    asyncio.run(main())
    return out


def child_peer(lines_path, warm_s, window_s):
    import asyncio
    import logging
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
    from pymodbus.framer import FramerType
    from controller.fieldbus import timing
    from controller.fieldbus.planner import plan_reads
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    lines = json.loads(Path(lines_path).read_text())
    reads = plan_reads("motor")
    fast = [(r.fc, r.start, r.count) for r in reads if r.cls == "fast"]
    status = [(r.fc, r.start, r.count) for r in reads if r.cls == "status"]
    slow = [(r.fc, r.start, r.count) for r in reads if r.cls == "slow"]
    cnt = {"polls": 0, "tx": 0, "errors": 0}
    counting = [False]

    async def line_task(ln, stop_at):
        if ln["kind"] == "rtu":
            c = AsyncModbusSerialClient(ln["port"], framer=FramerType.RTU, baudrate=BAUD,
                                        parity="N", stopbits=2, timeout=0.2, retries=0)
        elif ln["kind"] == "rtu_tcp":
            c = AsyncModbusTcpClient(ln["host"], port=ln["tcp_port"], framer=FramerType.RTU,
                                     timeout=0.2, retries=0)
        else:
            c = AsyncModbusTcpClient(ln["host"], port=ln["tcp_port"], timeout=0.2, retries=0)
        await c.connect()
        fn = {1: c.read_coils, 2: c.read_discrete_inputs, 3: c.read_holding_registers,
              4: c.read_input_registers}
        serial = ln["kind"] != "tcp"
        silence = timing.silence_s(BAUD, 11)
        t_end = 0.0
        devs = [[0.0, 0.0, 0.0, u] for u in range(1, ln["units"] + 1)]  # next poll/status/slow
        while time.monotonic() < stop_at:
            d = min(devs)
            now = time.monotonic()
            if d[0] > now:
                await asyncio.sleep(d[0] - now)
                continue
            batch = list(fast)
            if now >= d[1]:
                batch += status
                d[1] = now + STATUS_S
            if now >= d[2]:
                batch += slow
                d[2] = now + SLOW_S
            for f, start, count in batch:
                if serial:  # the 3.5-character silence after a reply, as the line keeps it
                    wait = t_end + silence - time.perf_counter()
                    if wait > 0:
                        await asyncio.sleep(wait)
                try:
                    r = await fn[f](start, count=count, device_id=d[3])
                    ok = not r.isError()
                except Exception:  # a timeout: counted, the loop goes on
                    ok = False
                t_end = time.perf_counter()
                if counting[0]:
                    cnt["tx" if ok else "errors"] += 1
            if counting[0]:
                cnt["polls"] += 1
            d[0] = time.monotonic() + POLL_MS / 1000.0
        c.close()

    async def main():
        stop_at = time.monotonic() + warm_s + window_s
        tasks = [asyncio.create_task(line_task(ln, stop_at)) for ln in lines]
        await asyncio.sleep(warm_s)
        counting[0] = True
        c0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(window_s)
        counting[0] = False
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        out = dict(cnt, cpu_s=cpu, wall_s=wall, rss_mb=_rss_mb())
        await asyncio.gather(*tasks, return_exceptions=True)
        return out

    return asyncio.run(main())


def _child(args, timeout_s):
    p = subprocess.run([sys.executable, "-m", "bench.scale_bench", "--child"] + args,
                       capture_output=True, text=True, cwd=str(ROOT), env=_env(),
                       timeout=timeout_s)
    if p.returncode != 0 or not p.stdout.strip():
        raise RuntimeError("bench scale child %s failed (%s):\n%s" % (args[0], p.returncode,
                                                                       p.stderr[-3000:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---- the run -------------------------------------------------------------------------
def _scraper(port, stop, counts):
    import urllib.request
    while not stop.wait(1.0):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                body = r.read()
            counts["scrapes"] += 1
            counts["bytes"] = len(body)
        except OSError:
            counts["errors"] += 1


def _per_k(x, n):
    return round(1000.0 * x / n, 4) if n else None


def _fit(xs, ys):
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sxx if sxx else None


def _linear(xs, ys):
    """(intercept, slope) of the least-squares line."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((a - mx) ** 2 for a in xs)
    b = sum((a - mx) * (c - my) for a, c in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def run(quick=False):
    ns = NS_QUICK if quick else NS
    warm, window = (2.0, 5.0) if quick else (2.0, 8.0)
    t_start = time.perf_counter()
    rows = []
    north = None
    with tempfile.TemporaryDirectory(prefix="greenedge-scale-") as d:
        tmp = Path(d)
        for n in ns:
            t0 = time.perf_counter()
            with Field(n) as field:
                setup_s = time.perf_counter() - t0
                sub = tmp / ("n%d" % n)
                sub.mkdir()
                cfg = sub / "plant.toml"
                cfg.write_text(plant_toml(sub, field.lines))
                (sub / "lines.json").write_text(json.dumps(field.lines))
                svc = _child(["service", str(cfg), str(warm), str(window)], 600)
                peer = _child(["peer", str(sub / "lines.json"), str(warm), str(window)], 600)
                row = {"n": n, "setup_s": round(setup_s, 1), "service": svc, "peer": peer,
                       "lines": {k: sum(1 for ln in field.lines if ln["kind"] == k)
                                 for k in ("rtu", "rtu_tcp", "tcp")},
                       "firmware_devices": sum(ln["units"] for ln in field.lines
                                               if ln["firmware"]),
                       "pymodbus_devices": sum(ln["units"] for ln in field.lines
                                               if not ln["firmware"])}
                if not quick and n == N_NORTH:
                    north = _north(tmp, field, warm, window, svc)
                rows.append(row)
    for r in rows:
        s, p = r["service"], r["peer"]
        r.update(
            cpu_s_per_1000_polls=_per_k(s["cpu_s"], s["polls"]),
            peer_cpu_s_per_1000_polls=_per_k(p["cpu_s"], p["polls"]),
            cpu_s_per_1000_tx=_per_k(s["cpu_s"], s["tx"]),
            peer_cpu_s_per_1000_tx=_per_k(p["cpu_s"], p["tx"]),
            polls_per_s=round(s["polls"] / s["wall_s"], 1),
            peer_polls_per_s=round(p["polls"] / p["wall_s"], 1),
            cpu_share=round(s["cpu_s"] / s["wall_s"], 4),
            peer_cpu_share=round(p["cpu_s"] / p["wall_s"], 4),
            jitter_p99_ms=s["jitter_p99_ms"], overruns=s["overruns"], rss_mb=s["rss_mb"])
        r["ratio_cpu_per_poll_vs_peer"] = round(
            r["cpu_s_per_1000_polls"] / r["peer_cpu_s_per_1000_polls"], 2) \
            if r["cpu_s_per_1000_polls"] and r["peer_cpu_s_per_1000_polls"] else None
    ok = [r for r in rows if r["cpu_share"] > 0 and r["peer_cpu_share"] > 0]
    res = {
        "ns": list(ns), "poll_ms": POLL_MS, "group_ms": GROUP_MS, "per_line": PER_LINE,
        "baud": BAUD, "firmware_max_n": FIRMWARE_MAX_N, "warm_s": warm, "window_s": window,
        "rows": rows,
        "growth_exponent_cpu": round(_fit([r["n"] for r in ok], [r["cpu_share"] for r in ok]), 3)
        if len(ok) > 1 else None,
        "peer_growth_exponent_cpu": round(_fit([r["n"] for r in ok],
                                               [r["peer_cpu_share"] for r in ok]), 3)
        if len(ok) > 1 else None,
        "cpu_per_poll_last_vs_first": round(rows[-1]["cpu_s_per_1000_polls"]
                                            / rows[0]["cpu_s_per_1000_polls"], 2),
        "peer": "plain pymodbus %s async clients in their own process, one task per line or "
                "gateway, the planner's blocks at the same schedule, nothing else"
                % __import__("pymodbus").__version__,
        "north": north,
    }
    if len(ok) > 1:
        # CPU share = fixed + marginal x polls/s: the fixed part (housekeeping, status,
        # the loop group's empty cycles) is what makes the per-poll cost fall with N.
        for key, who in (("", "service"), ("peer_", "peer")):
            a, b = _linear([r[who]["polls"] / r[who]["wall_s"] for r in ok],
                           [r[key + "cpu_share"] for r in ok])
            res[key + "fixed_cpu_share"] = round(a, 4)
            res[key + "marginal_cpu_s_per_1000_polls"] = round(1000 * b, 4)
        res["ratio_marginal_vs_peer"] = round(
            res["marginal_cpu_s_per_1000_polls"] / res["peer_marginal_cpu_s_per_1000_polls"], 2) \
            if res["peer_marginal_cpu_s_per_1000_polls"] > 0 else None
    res["limits"] = _limits(res)
    res["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    return res


def _north(tmp, field, warm, window, plain):
    from bench.northbound_bench import _mosquitto
    proc, mport = _mosquitto()
    ports = {"metrics": _free_port(), "opcua": _free_port(), "mqtt": mport}
    sub = tmp / "north"
    sub.mkdir()
    cfg = sub / "plant.toml"
    cfg.write_text(plant_toml(sub, field.lines, ports))
    stop, counts = threading.Event(), {"scrapes": 0, "errors": 0, "bytes": 0}
    th = threading.Thread(target=_scraper, args=(ports["metrics"], stop, counts), daemon=True)
    th.start()
    try:
        s = _child(["service", str(cfg), str(warm), str(window)], 600)
    finally:
        stop.set()
        th.join(10)
        proc.terminate()
        proc.wait(10)
    nb = s.get("north", {})
    updates = nb.get("opcua_updates", 0) + nb.get("sparkplug_metrics", 0)
    extra = s["cpu_s"] - plain["cpu_s"] * s["wall_s"] / plain["wall_s"]
    return {"n": N_NORTH, "service": s, "scrapes": counts,
            "opcua_updates_per_s": round(nb.get("opcua_updates", 0) / s["wall_s"], 1),
            "sparkplug_metrics_per_s": round(nb.get("sparkplug_metrics", 0) / s["wall_s"], 1),
            "tag_updates_per_s": round(updates / s["wall_s"], 1),
            "cpu_share": round(s["cpu_s"] / s["wall_s"], 4),
            "cpu_share_without": round(plain["cpu_s"] / plain["wall_s"], 4),
            "extra_cpu_s_per_1000_tag_updates": _per_k(extra, updates),
            "cpu_s_per_1000_tag_updates_total": _per_k(s["cpu_s"], updates),
            "jitter_p99_ms": s["jitter_p99_ms"], "jitter_p99_ms_without": plain["jitter_p99_ms"],
            "overruns": s["overruns"], "rss_mb": s["rss_mb"],
            "rss_mb_without": plain["rss_mb"]}


def _limits(res):
    """What limits one host, from this run's figures."""
    rows = res["rows"]
    last = rows[-1]
    share = last["cpu_share"]
    per_dev = share / last["n"]
    util = [u for r in rows for u in r["service"]["line_utilisation"].values()]
    rss = [(r["n"], r["rss_mb"]) for r in rows if r["rss_mb"]]
    rss_per_dev = ((rss[-1][1] - rss[0][1]) / (rss[-1][0] - rss[0][0])
                   if len(rss) > 1 and rss[-1][0] > rss[0][0] else None)
    out = {
        "cpu_share_of_one_core_at_max_n": round(share, 3),
        "devices_per_process_at_70pct_core": int(0.7 / per_dev) if per_dev > 0 else None,
        "rtu_line_utilisation_max": round(max(util), 3) if util else None,
        "rss_mb_per_device": round(rss_per_dev, 3) if rss_per_dev is not None else None,
    }
    out["group_exec_p99_ms_at_max_n"] = round(last["service"]["exec_p99_ms"], 2)
    out["jitter_p99_ms_at_max_n"] = round(last["jitter_p99_ms"], 2)
    out["note"] = (
        "One service process is one asyncio loop under one GIL: it can use one core, whatever "
        "the host has. At N=%d it took %.0f %% of a core, so (costs growing linearly) about "
        "%s devices at this poll rate fill 70 %% of it; memory (%s MB a device) is no limit. "
        "%s: %d loops in one %d ms group ran %.1f ms a cycle (p99) and the "
        "cycle started up to %.1f ms late (p99), the line tasks sharing the loop with it. "
        "On the field side an RTU line is limited by its physics: %d devices at %d baud already fill up "
        "to %.0f %% of the wire at a %d ms poll, which is why the rest of the plant sits "
        "behind gateways. Past one core: several service processes per host, one per line "
        "group (each its own config and loop groups), and above the host the site level "
        "(docs/site.md: each edge publishing over Sparkplug to the site host)."
        % (last["n"], 100 * share, out["devices_per_process_at_70pct_core"],
           out["rss_mb_per_device"],
           "Timing goes first" if last["jitter_p99_ms"] > 0.1 * GROUP_MS else "Timing holds",
           last["n"], GROUP_MS, out["group_exec_p99_ms_at_max_n"],
           out["jitter_p99_ms_at_max_n"], PER_LINE, BAUD,
           100 * (out["rtu_line_utilisation_max"] or 0), POLL_MS))
    return out


def report(r):
    out = ["scale benchmark: the host service polling N motor devices (poll %d ms, one fan loop "
           "each in a %d ms group, %d devices a line; peer: %s)"
           % (r["poll_ms"], r["group_ms"], r["per_line"], r["peer"]),
           "%5s %-16s %8s %10s %10s %6s %9s %9s %5s %7s %7s %6s" % (
               "N", "lines r/rt/tcp", "polls/s", "CPU/1k pl", "peer", "ratio", "CPU core",
               "jit p99", "ovr", "RSS MB", "fw/pym", "up")]
    for x in r["rows"]:
        s = x["service"]
        out.append("%5d %-16s %8.1f %9.3fs %9.3fs %5.2fx %8.1f%% %7.2fms %5d %7.1f %7s %6s" % (
            x["n"], "%d/%d/%d" % (x["lines"]["rtu"], x["lines"]["rtu_tcp"], x["lines"]["tcp"]),
            x["polls_per_s"], x["cpu_s_per_1000_polls"], x["peer_cpu_s_per_1000_polls"],
            x["ratio_cpu_per_poll_vs_peer"] or 0, 100 * x["cpu_share"], x["jitter_p99_ms"],
            x["overruns"], x["rss_mb"], "%d/%d" % (x["firmware_devices"], x["pymodbus_devices"]),
            "%d/%d" % (s["devices_up"], s["devices"])))
    out.append("CPU growth exponent (log-log, CPU share vs N): service %.2f, peer %.2f; CPU per "
               "poll at N=%d is %.2fx that at N=%d"
               % (r["growth_exponent_cpu"] or 0, r["peer_growth_exponent_cpu"] or 0,
                  r["rows"][-1]["n"], r["cpu_per_poll_last_vs_first"], r["rows"][0]["n"]))
    if "marginal_cpu_s_per_1000_polls" in r:
        out.append("linear fit (CPU share = fixed + marginal x polls/s): service fixed %.1f %% of "
                   "a core + %.3f s per 1,000 polls; peer %.1f %% + %.3f s (marginal %.2fx the "
                   "peer)" % (100 * r["fixed_cpu_share"], r["marginal_cpu_s_per_1000_polls"],
                              100 * r["peer_fixed_cpu_share"],
                              r["peer_marginal_cpu_s_per_1000_polls"],
                              r["ratio_marginal_vs_peer"] or 0))
    nb = r.get("north")
    if nb:
        out.append("northbound at N=%d (OPC UA + Sparkplug to mosquitto + Prometheus scraped "
                   "1/s): %.0f tag updates/s (OPC UA %.0f, Sparkplug %.0f), CPU %.1f%% of a core "
                   "vs %.1f%% without, %.4f s extra CPU per 1,000 tag updates, jitter p99 %.2f ms"
                   " (%.2f without), overruns %d, RSS %.1f MB (%.1f without)"
                   % (nb["n"], nb["tag_updates_per_s"], nb["opcua_updates_per_s"],
                      nb["sparkplug_metrics_per_s"], 100 * nb["cpu_share"],
                      100 * nb["cpu_share_without"], nb["extra_cpu_s_per_1000_tag_updates"] or 0,
                      nb["jitter_p99_ms"], nb["jitter_p99_ms_without"], nb["overruns"],
                      nb["rss_mb"], nb["rss_mb_without"]))
    out.append("limits: " + r["limits"]["note"])
    out.append("elapsed %.0f s" % r["elapsed_s"])
    return "\n".join(out)


def _main(argv):
    if argv and argv[0] == "--child":
        kind, path, warm, window = argv[1], argv[2], float(argv[3]), float(argv[4])
        fn = child_service if kind == "service" else child_peer
        print(json.dumps(fn(path, warm, window)), flush=True)
        return 0
    quick = "--quick" in argv
    r = run(quick)
    print(json.dumps(r, sort_keys=True) if "--json" in argv else report(r))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
