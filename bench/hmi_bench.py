"""The HMI's cost to the control cycle: cycle start jitter (runtime/cycle.py
GroupStats: start - due) with the HMI open in a headless Chromium (the
overview and the loop faceplates, both live over server-sent events) against
the same service with the HMI running and no browser connected, and without
the HMI (the named peers). One service runs throughout; each round has the
three windows in turn (no HMI; the HMI started, no browser; a browser on it;
the HMI stopped), so machine load drifts alike into all three. Chromium's own
CPU in the browser windows (utime + stime of its processes, from /proc) is
reported as a share of one core: on the service's machine it competes with
the cycle.

Two rigs: "large", the northbound-jitter plant (90 motor devices, 5,040 tags,
8 fan loops in a 50 ms group on two in-process fake lines), and "small", one
fan loop at 100 ms with the historian on (the HMI tests' rig). --quick runs
the large rig only, shorter.

python bench/run.py hmi [--quick] [--json]
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _pct(xs, q):
    xs = sorted(xs)
    return 1000.0 * xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


def _window(rig, seconds):
    gs = rig.svc.groups[getattr(rig, "group", "process")]
    o0 = gs.overruns
    gs.jitter.clear()
    time.sleep(seconds)
    return list(gs.jitter), gs.overruns - o0


def _tree_cpu_s(marker):
    """CPU seconds (utime + stime) so far of the processes whose command line
    holds marker (the browser's profile directory) and of their descendants."""
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                st = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                mine = marker.encode() in f.read()
        except OSError:     # gone meanwhile
            continue
        procs[int(pid)] = (int(st[1]), int(st[11]) + int(st[12]), mine)
    ours = {p for p, v in procs.items() if v[2]}
    grew = True
    while grew:
        more = {p for p, v in procs.items() if v[0] in ours} - ours
        ours |= more
        grew = bool(more)
    return sum(procs[p][1] for p in ours) / os.sysconf("SC_CLK_TCK")


def _summary(samples, overruns):
    return {"cycles": len(samples),
            "jitter_mean_ms": 1000.0 * sum(samples) / len(samples) if samples else None,
            "jitter_p50_ms": _pct(samples, 0.5), "jitter_p90_ms": _pct(samples, 0.9),
            "jitter_p99_ms": _pct(samples, 0.99), "jitter_max_ms": _pct(samples, 1.0),
            "overruns": overruns}


def _large_rig(tmp):
    """The northbound-jitter bench's plant (bench/northbound_jitter_bench.py)
    on the HMI tests' Rig: served on a thread, its drives' physics stepped
    every 50 ms by another."""
    from bench.northbound_jitter_bench import N_DEV, _plant
    from controller.runtime.service import Service, build_lines
    from hil_tests.fakeline import FakeBus, FakeDevice
    from tests.test_hmi_support import Rig

    class LargeRig(Rig):
        group = "drives"

        def __init__(self, tmp):
            super().__init__(tmp, hmi=False)    # its users file; its one-device service unused
            cfg = _plant(tmp, None)
            self.bus = FakeBus([FakeDevice("motor", u) for u in range(1, N_DEV + 1)],
                               latency_s=0.001)
            self.svc = Service(cfg, live=False, historian=False,
                               lines=build_lines(cfg, None, client_factory=self.bus.client))

        def _serve(self):
            self.loop.run_until_complete(self.svc.run(3600.0))
    return LargeRig(tmp)


def run(quick=False):
    out = {"large": _run_rig("large", quick)}
    if not quick:
        out["small"] = _run_rig("small", quick)
    for k in ("ratio_browser_vs_no_hmi_mean", "ratio_browser_vs_no_hmi_p90",
              "ratio_browser_vs_no_hmi_p99"):
        out[k] = max(r[k] for r in (out["large"], out.get("small", out["large"])))
    return out


def _run_rig(which, quick):
    from playwright.sync_api import sync_playwright
    from controller.north.hmi.config import hmi_table
    from controller.north.hmi.server import HmiServer
    from tests.test_hmi_support import USERS, Rig
    rounds, win_s = (2, 8.0) if quick else (4, 20.0)
    out = {"rig": which, "rounds": rounds, "window_s": win_s}
    tmp = Path(tempfile.mkdtemp(prefix="greenedge-hmi-bench-"))
    acc = {k: ([], 0) for k in ("no_hmi", "no_browser", "browser")}
    pushed = 0
    chromium_s = 0.0

    def window(key):
        s, o = _window(rig, win_s)
        acc[key] = (acc[key][0] + s, acc[key][1] + o)
    try:
        # one service; the HMI started and stopped in it
        rig = _large_rig(tmp) if which == "large" else Rig(tmp, hmi=False)
        group = getattr(rig, "group", "process")
        for t in rig._threads:
            t.start()
        try:
            rig.wait(lambda: rig.svc.groups[group].cycles > 50, "cycles")
            with sync_playwright() as pw:
                for _ in range(rounds):
                    window("no_hmi")
                    hmi = HmiServer(rig.svc, hmi_table(listen="127.0.0.1:0",
                                                       users=tmp / "users.toml")).start()
                    try:
                        rig.wait(lambda: hmi.frame.get("points"), "HMI frame")
                        window("no_browser")
                        prof = tempfile.mkdtemp(prefix="greenedge-chromium-")
                        ctx = pw.chromium.launch_persistent_context(
                            prof, executable_path=CHROMIUM, args=ARGS, headless=True)
                        try:
                            p = ctx.pages[0] if ctx.pages else ctx.new_page()
                            p.goto(hmi.url + "/login")
                            p.fill("#user", "olga")
                            p.fill("#password", USERS["olga"][1])
                            p.click("#login-btn")
                            p.wait_for_url("**/overview")
                            p.wait_for_selector("body[data-ready='1']", timeout=60000)
                            p2 = ctx.new_page()
                            p2.goto(hmi.url + "/loops")
                            p2.wait_for_selector("body[data-ready='1']", timeout=60000)
                            rig.wait(lambda: hmi.streams >= 2, "two live streams")
                            n0, c0 = hmi.pushed, _tree_cpu_s(prof)
                            window("browser")
                            chromium_s += _tree_cpu_s(prof) - c0
                            pushed += hmi.pushed - n0
                        finally:
                            ctx.close()
                            shutil.rmtree(prof, ignore_errors=True)
                    finally:
                        hmi.stop()
        finally:
            rig.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for k, v in acc.items():
        out[k] = _summary(*v)
    out["values_pushed_per_s"] = pushed / (rounds * win_s)
    out["chromium_cpu_share"] = chromium_s / (rounds * win_s)
    out["cpus"] = os.cpu_count()
    out["load_avg"] = os.getloadavg()[0]
    for k in ("jitter_mean_ms", "jitter_p90_ms", "jitter_p99_ms"):
        b, n, h = out["browser"][k], out["no_browser"][k], out["no_hmi"][k]
        q = k.split("_")[1]
        out["ratio_browser_vs_no_browser_" + q] = b / n if n else None
        out["ratio_browser_vs_no_hmi_" + q] = b / h if h else None
    return out


def report(r):
    text = [_report_rig(r[k]) for k in ("large", "small") if k in r]
    text.append("worst of the rigs, browser / no HMI: mean %.2f, p90 %.2f, p99 %.2f"
                % (r["ratio_browser_vs_no_hmi_mean"], r["ratio_browser_vs_no_hmi_p90"],
                   r["ratio_browser_vs_no_hmi_p99"]))
    return "\n".join(text)


def _report_rig(r):
    f = "%s: %d cycles, jitter mean %.3f ms, p90 %.3f ms, p99 %.2f ms, max %.1f ms, %d overruns"
    rig = ("90 devices, 5,040 tags, 8 fan loops at 50 ms" if r["rig"] == "large"
           else "one fan loop at 100 ms, historian on")
    lines = ["HMI and cycle jitter, %s rig: %s on the fake line (%d windows of %g s each, "
             "load average %.1f on %d CPUs)" % (r["rig"], rig, r["rounds"], r["window_s"],
                                                r["load_avg"], r["cpus"])]
    for k, name in (("browser", "HMI open in Chromium (overview + loop faceplate, live)"),
                    ("no_browser", "HMI running, no browser"), ("no_hmi", "no HMI")):
        s = r[k]
        lines.append("  " + f % (name, s["cycles"], s["jitter_mean_ms"], s["jitter_p90_ms"],
                                 s["jitter_p99_ms"],
                                 s["jitter_max_ms"], s["overruns"]))
    lines.append("  values pushed to the browser: %.0f/s; Chromium's CPU meanwhile: %.2f of a core"
                 % (r["values_pushed_per_s"], r["chromium_cpu_share"]))
    for q in ("mean", "p90", "p99"):
        lines.append("  %s ratio: browser / no browser %.2f, browser / no HMI %.2f"
                     % (q, r["ratio_browser_vs_no_browser_" + q],
                        r["ratio_browser_vs_no_hmi_" + q]))
    return "\n".join(lines)
