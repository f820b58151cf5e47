"""Benchmarks: `python bench/run.py NAME [--json]`.

Each benchmark measures GreenEdge beside a named peer in the same run and prints
ratios; --json prints one JSON object. Names: modbus, kernels, plants, metering, service, line, alarms, northbound, hmi, scale, site.
"""

import argparse
import json
import sys
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=sorted(BENCHES))
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    a = ap.parse_args(argv)
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
