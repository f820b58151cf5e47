"""Benchmarks: `python bench/run.py NAME [--json] [--quick]`, or every one:
`python bench/run.py all --json --out bench/results.json`.

Each benchmark measures GreenEdge beside a named peer in the same run and prints
ratios; --json prints one JSON object. `all` runs each benchmark in its own
process, one after the other (the form listed in ALL: the HMI benchmark, whose
full form alone takes ~9 minutes, and the site benchmark in their --quick forms,
so the whole run stays under 10 minutes on 2 cores; run `bench/run.py hmi` and
`bench/run.py site` for the full forms), and records the date, host and git
revision with the results; docs/benchmarks.md is rendered from that file by
tools/render_benchmarks.py.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCHES = {
    "modbus": "bench.modbus_bench",
    "kernels": "bench.kernels_bench",
    "plants": "bench.plants_bench",
    "metering": "bench.metering_bench",
    "service": "bench.service_bench",
    "line": "bench.line_bench",
    "alarms": "bench.alarms_bench",
    "northbound": "bench.northbound_bench",
    "northbound-jitter": "bench.northbound_jitter_bench",
    "hmi": "bench.hmi_bench",
    "scale": "bench.scale_bench",
    "site": "bench.site_bench",
}
# What `all` runs: name -> quick form?
ALL = {name: name in ("hmi", "site") for name in BENCHES}


def _git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except OSError:
        return ""


def host_info():
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(),
            "system": "%s %s" % (platform.system(), platform.release()),
            "python": platform.python_version(),
            "pymodbus": __import__("pymodbus").__version__}


def run_all(names, quick):
    out = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "revision": _git("rev-parse", "--short", "HEAD"),
           "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
           "host": host_info(), "results": {}, "wall_s": {}, "quick": {}}
    t_all = time.monotonic()
    for name in names:
        q = quick or ALL[name]
        cmd = [sys.executable, str(ROOT / "bench" / "run.py"), name, "--json"] + (
            ["--quick"] if q else [])
        print("bench %s%s ..." % (name, " --quick" if q else ""), file=sys.stderr, flush=True)
        t0 = time.monotonic()
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        out["wall_s"][name] = round(time.monotonic() - t0, 1)
        out["quick"][name] = q
        if r.returncode != 0:
            raise SystemExit("bench %s failed (exit %d):\n%s" % (name, r.returncode,
                                                                r.stderr[-4000:]))
        out["results"][name] = json.loads(r.stdout.strip().splitlines()[-1])
        print("  %.0f s" % out["wall_s"][name], file=sys.stderr, flush=True)
    out["total_wall_s"] = round(time.monotonic() - t_all, 1)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=sorted(BENCHES) + ["all"])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    ap.add_argument("--only", help="with all: a comma-separated subset")
    ap.add_argument("--out", help="with all: also write the JSON to this file")
    a = ap.parse_args(argv)
    if a.name == "all":
        names = a.only.split(",") if a.only else list(BENCHES)
        bad = [n for n in names if n not in BENCHES]
        if bad:
            ap.error("unknown benchmark(s): %s" % ", ".join(bad))
        result = run_all(names, a.quick)
        text = json.dumps(result, sort_keys=True, indent=1)
        if a.out:
            Path(a.out).write_text(text + "\n")
        print(text if a.json else "all: %d benchmarks in %.0f s" % (len(names),
                                                                    result["total_wall_s"]))
        return 0
    import importlib
    mod = importlib.import_module(BENCHES[a.name])
    result = mod.run(quick=a.quick)
    if a.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(mod.report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
