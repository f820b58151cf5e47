"""OPC UA: the cost per value update of GreenEdge's server (controller/north/
opcua.py: the hub's device samples mapped to nodes, status codes, one batch
per cycle) against asyncua's own bare write loop (server.write_attribute_value
of a prepared DataValue per node) on the same address space: the named peer.

Sparkplug B: tags/s and CPU per 1,000 tag updates of the edge node against a
pysparkplug + paho publish loop and a bare paho publish loop (below).

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
            "ratio_vs_asyncua_bare": o_s / b_s, "sparkplug": run_sparkplug(quick)}


def report(r):
    return ("OPC UA value update, %d tags: GreenEdge %.1f us/update (%d updates), asyncua's bare "
            "write loop %.1f us/update (%d): ratio %.2f"
            % (r["tags"], r["ours_us_per_update"], r["ours_updates"],
               r["asyncua_bare_us_per_update"], r["bare_updates"], r["ratio_vs_asyncua_bare"])
            + ("\n" + report_sparkplug(r["sparkplug"]) if "sparkplug" in r else ""))


# ---- Sparkplug B ---------------------------------------------------------------------
# GreenEdge's edge node (controller/north/sparkplug.py: the hub's device samples,
# report by exception, datatypes, engUnit/Quality properties, one DDATA per device
# per round, seq) against two peers doing the same publishing with nothing else:
# a pysparkplug encode + paho publish loop (one DData of Metrics per device per
# round) and a bare paho publish loop (the same payload bytes, encoded once).
# Both to a Debian mosquitto on loopback (anonymous, no TLS: the client's cost,
# not the cipher's). CPU is this process's (time.process_time), per 1,000 tag
# updates; the broker runs in its own process.

def _mosquitto():
    import shutil
    import socket
    import subprocess
    exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if exe is None:
        raise SystemExit("bench northbound: mosquitto missing (apt-get install mosquitto)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    t_end = time.monotonic() + 20
    while time.monotonic() < t_end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("bench northbound: mosquitto never listened")


def _drain(client, info):
    t_end = time.monotonic() + 60
    while not info.is_published() and time.monotonic() < t_end:
        client.loop(0.01)


def run_sparkplug(quick=False):
    from controller.config import load_config
    from controller.north.sparkplug import SparkplugNode
    from controller.registers import point_map
    from controller.runtime.hub import Hub
    from firmware import regmap
    import paho.mqtt.client as mqtt
    import pysparkplug as sp
    n_dev = 4 if quick else 40
    rounds = 5 if quick else 20
    devs = "".join('[devices.m%d]\nline = "l1"\nunit = %d\nprofile = "motor"\n' % (i, i + 1)
                   for i in range(n_dev))
    proc, port = _mosquitto()
    try:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "plant.toml"
            plant = (PLANT % devs).split("[opcua]")[0].replace(
                'name = "bench"', 'name = "bench"\nstate_dir = "%s"' % d)
            p.write_text(plant + '[mqtt]\nbroker = "mqtt://127.0.0.1:%d"\n' % port)
            cfg = load_config(p)
            node = SparkplugNode(cfg, cfg.north["mqtt"], Hub(), gate=None)
            assert node._connect()
            t_end = time.monotonic() + 20
            while not node.connected and time.monotonic() < t_end:
                node._client.loop(0.05)
            pts = {q.name: q for q in point_map("motor").values() if q.count == 1}

            def sample(r):
                t = time.time()
                return {"up": True, "points": {
                    pt: (float((r + k) % 2) if q.type == "bit" else float(r + k), regmap.Q_GOOD, t)
                    for k, (pt, q) in enumerate(pts.items())}}
            for dn in cfg.devices:
                node._device_sample(dn, sample(0), [])
            node._births()
            _drain(node._client, node._client.publish("bench/sync", b"", 0))

            sent0 = node.sent["metrics"]
            w0, c0 = time.perf_counter(), time.process_time()
            for r in range(1, rounds + 1):
                rows = []
                for dn in cfg.devices:
                    node._device_sample(dn, sample(r), rows)
                node._send_live(rows)
                node._client.loop(0)
            _drain(node._client, node._client.publish("bench/sync", b"", 0))
            ours_w, ours_c = time.perf_counter() - w0, time.process_time() - c0
            ours_n = node.sent["metrics"] - sent0
            node._ndeath_and_disconnect()
            node.buffer.close()

        c = mqtt.Client(client_id="bench-peer", clean_session=True)
        c.connect("127.0.0.1", port, 30)
        while not c.is_connected():
            c.loop(0.05)
        DT = sp.DataType
        from controller.north.sparkplug_data import datatype_name
        dts = {n: getattr(DT, datatype_name(q)) for n, q in pts.items()}

        def payload(dn, r, seq):
            t = int(time.time() * 1000)
            ms = []
            for k, (n, q) in enumerate(pts.items()):
                v = r + k
                dt = dts[n]
                v = bool(v % 2) if dt == DT.BOOLEAN else float(v) if dt in (
                    DT.FLOAT, DT.DOUBLE) else int(v) % 30000
                ms.append(sp.Metric(timestamp=t, name=n, datatype=dt, value=v))
            return sp.DData(timestamp=t, seq=seq, metrics=tuple(ms)).encode(include_dtypes=True)
        names = ["m%d" % i for i in range(n_dev)]
        seq = 0
        w0, c0 = time.perf_counter(), time.process_time()
        for r in range(1, rounds + 1):
            for dn in names:
                c.publish("spBv1.0/peer/DDATA/bench/" + dn, payload(dn, r, seq), 0)
                seq = (seq + 1) % 256
            c.loop(0)
        _drain(c, c.publish("bench/sync", b"", 0))
        enc_w, enc_c = time.perf_counter() - w0, time.process_time() - c0
        enc_n = rounds * n_dev * len(pts)
        raw = [payload(dn, 1, 0) for dn in names]
        w0, c0 = time.perf_counter(), time.process_time()
        for r in range(1, rounds + 1):
            for dn, b in zip(names, raw):
                c.publish("spBv1.0/peer/DDATA/bench/" + dn, b, 0)
            c.loop(0)
        _drain(c, c.publish("bench/sync", b"", 0))
        raw_w, raw_c = time.perf_counter() - w0, time.process_time() - c0
        c.disconnect()
    finally:
        proc.terminate()
        proc.wait(10)
    return {"tags": n_dev * len(pts), "rounds": rounds,
            "ours_updates": ours_n, "ours_tags_per_s": ours_n / ours_w,
            "ours_cpu_ms_per_1000": 1e6 * ours_c / ours_n,
            "peer_encode_tags_per_s": enc_n / enc_w,
            "peer_encode_cpu_ms_per_1000": 1e6 * enc_c / enc_n,
            "peer_raw_tags_per_s": enc_n / raw_w,
            "peer_raw_cpu_ms_per_1000": 1e6 * raw_c / enc_n,
            "ratio_cpu_vs_encode_peer": (ours_c / ours_n) / (enc_c / enc_n)}


def report_sparkplug(r):
    return ("Sparkplug DDATA, %d tags x %d rounds: GreenEdge %.0f tags/s, %.2f ms CPU per 1,000 "
            "tag updates (%d updates); pysparkplug encode + paho publish %.0f tags/s, %.2f ms; "
            "bare paho publish of pre-encoded payloads %.0f tags/s, %.3f ms; CPU ratio vs the "
            "encode + publish peer %.2f"
            % (r["tags"], r["rounds"], r["ours_tags_per_s"], r["ours_cpu_ms_per_1000"],
               r["ours_updates"], r["peer_encode_tags_per_s"], r["peer_encode_cpu_ms_per_1000"],
               r["peer_raw_tags_per_s"], r["peer_raw_cpu_ms_per_1000"],
               r["ratio_cpu_vs_encode_peer"]))
