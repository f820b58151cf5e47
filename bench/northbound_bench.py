"""OPC UA: the cost per value update of GreenEdge's server (controller/north/
opcua.py: the hub's device samples mapped to nodes, status codes, one batch
per cycle) against asyncua's own bare write loop (server.write_attribute_value
of a prepared DataValue per node) on the same address space: the named peer.

python bench/run.py northbound [--quick] [--json]
"""

import asyncio
import tempfile
import textwrap
import time
from pathlib import Path

PLANT = textwrap.dedent("""
    [service]
    name = "bench"
    [lines.l1]
    kind = "rtu"
    port = "/dev/null"
    baud = 115200
    %s
    [opcua]
    endpoint = "opc.tcp://127.0.0.1:0"
    security = ["None"]
    """)


def run(quick=False):
    from controller.config import load_config
    from controller.north.opcua import OpcUaServer
    from controller.runtime.hub import Hub
    from controller.registers import point_map
    from firmware import regmap
    n_dev = 4 if quick else 40
    devs = "".join('[devices.m%d]\nline = "l1"\nunit = %d\nprofile = "motor"\n' % (i, i + 1)
                   for i in range(n_dev))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "plant.toml"
        p.write_text(PLANT % devs)
        cfg = load_config(p)
        srv = OpcUaServer(cfg, cfg.north["opcua"], Hub(), gate=None, period_s=1.0).start()
        try:
            pts = [q.name for q in point_map("motor").values()
                   if q.count == 1 and q.type != "bit"]
            rounds = 5 if quick else 20

            async def ours():
                t = time.time()
                writes_per_round = 0
                t0 = time.perf_counter()
                for r in range(rounds):
                    writes = []
                    for dn in cfg.devices:
                        srv._device(writes, dn, {"up": True, "points": {
                            pt: (float(r + k), regmap.Q_GOOD, t) for k, pt in enumerate(pts)}},
                            t)
                    writes_per_round = len(writes)
                    await srv._write(writes)
                return (time.perf_counter() - t0) / (rounds * writes_per_round), \
                    rounds * writes_per_round

            async def bare():
                ua = srv.ua
                nids = [e[0] for k, e in srv.nodes.items() if k[0] == "dev" and not e[1]]
                t0 = time.perf_counter()
                for r in range(rounds):
                    for k, nid in enumerate(nids):
                        await srv.server.write_attribute_value(
                            nid, ua.DataValue(ua.Variant(float(r + k + 0.5), ua.VariantType.Double)))
                return (time.perf_counter() - t0) / (rounds * len(nids)), rounds * len(nids)

            o_s, o_n = asyncio.run_coroutine_threadsafe(ours(), srv._loop).result(600)
            b_s, b_n = asyncio.run_coroutine_threadsafe(bare(), srv._loop).result(600)
        finally:
            srv.stop()
    return {"tags": n_dev * len(pts), "ours_us_per_update": o_s * 1e6, "ours_updates": o_n,
            "asyncua_bare_us_per_update": b_s * 1e6, "bare_updates": b_n,
            "ratio_vs_asyncua_bare": o_s / b_s}


def report(r):
    return ("OPC UA value update, %d tags: GreenEdge %.1f us/update (%d updates), asyncua's bare "
            "write loop %.1f us/update (%d): ratio %.2f"
            % (r["tags"], r["ours_us_per_update"], r["ours_updates"],
               r["asyncua_bare_us_per_update"], r["bare_updates"], r["ratio_vs_asyncua_bare"]))
