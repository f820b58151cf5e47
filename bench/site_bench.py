"""site: metrics/s ingested into PostgreSQL end to end, and the latency.

edge publishers -> each edge's own local mosquitto -> a real mosquitto bridge
(TLS, the edge's user) -> the site mosquitto (TLS, ACL) -> `greenedge site`
(its own process, as the command runs) -> PostgreSQL 15 (started here as
tests/test_site.py does, with track_commit_timestamp = on).

For E = 3 and 12 edges x 2,000 tags (36 motor devices of the firmware
register map, 56 points each, the last one cut; every tag changes every
second, the worst case of report by exception): Sparkplug NBIRTH + DBIRTHs
built with the project's encoder (controller/north/sparkplug_data.make_metric,
engUnit and Quality properties), then DDATA per device every second (QoS 0,
as the edge publishes) for STEADY_S, then a store-and-forward burst: BURST_S
seconds of older samples flagged historical, published at once (QoS 1), the
host's maximum rate. The payloads are encoded before the clock starts (the
edges are other machines in a plant), one publisher process for all edges.

Latency: per stored row, pg_xact_commit_timestamp(xmin) - the metric's
source timestamp (p50, p99) over the steady phase. Loss: the rows counted in
PostgreSQL per phase against what was published. Rate: burst rows / (last
commit - first publish). Peer: PostgreSQL's own COPY (server side, from a
file, text format) of the same burst rows, exported from the metrics table,
into a table of the same shape (partitioned by day, the same unique key),
median of 3, in the same run. Aim: rate >= 0.5 x COPY, p99 <= 2 s, no loss.
CPU in the burst (burst_cpu): each process's utime + stime from /proc over
the burst (the "burst" command to the last row counted), as a share of one
core: the host, the publisher, the site mosquitto, the local mosquittos
(summed), PostgreSQL (every process but the bench's own connection, which
polls the row count: postgres_bench_polls), and the whole machine's busy
time (/proc/stat: other sessions too) out of cores.

python bench/run.py site [--quick] [--json]
"""

import datetime as dt
import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TAGS, PER_DEV = 2000, 56
CONFIGS = ((3, 20, 20), (12, 20, 15))          # (edges, steady_s, burst_s)
CONFIGS_QUICK = ((3, 8, 6), (12, 6, 3))
GROUP = "plant"


# ---- the publisher (its own process) --------------------------------------------------------
def _device_points():
    from controller.registers import point_map
    from controller.north.sparkplug_data import datatype_name
    pts = [(p.name, datatype_name(p), p.unit) for p in point_map("motor").values()
           if p.count == 1]
    out, n, d = [], 0, 0
    while n < TAGS:
        take = pts[:min(PER_DEV, TAGS - n)]
        out.append(("m%02d" % d, take))
        n += len(take)
        d += 1
    return out


def _val(dtype, k, i):
    if dtype == "BOOLEAN":
        return (k // 7 + i) % 2 == 0
    if dtype in ("UINT16", "UINT32"):
        return (k * 3 + i) % 1000
    return 50.0 + 10.0 * ((k * 7919 + i * 104729) % 1000) / 1000.0


def _payloads(node_i, devices, t_ms, k, seq, historical):
    """[(device, bytes)] for second k: one DDATA per device, the encoder's
    output (make_metric: value, Quality 192, historical flag)."""
    import pysparkplug as sp
    from controller.north.sparkplug_data import make_metric
    out = []
    for di, (dn, pts) in enumerate(devices):
        ts = t_ms + di     # the devices' polls spread over the second
        ms = tuple(make_metric(sp, name, getattr(sp.DataType, dtype), _val(dtype, k, i + node_i),
                               ts, 192, None, historical) for i, (name, dtype, _u) in
                   enumerate(pts))
        out.append((dn, sp.DData(timestamp=ts, seq=seq % 256, metrics=ms).encode(
            include_dtypes=True)))
        seq += 1
    return out, seq


def publisher(spec):
    """spec: {nodes: [[node, local port]], t0_ms, steady_s, burst_s, hist_ms}.
    Prints JSON lines: ready, born, steady_done, burst {t_first, t_last}."""
    import threading
    import paho.mqtt.client as mqtt
    import pysparkplug as sp
    from controller.north.sparkplug_data import make_metric
    devices = _device_points()
    nodes = spec["nodes"]
    births, steady, burst = {}, {}, {}
    for ni, (node, _port) in enumerate(nodes):
        now = int(time.time() * 1000)
        seq = 0
        nb = sp.NBirth(timestamp=now, seq=seq, metrics=(
            make_metric(sp, "bdSeq", sp.DataType.INT64, 0, now),
            make_metric(sp, "Node Control/Rebirth", sp.DataType.BOOLEAN, False, now)))
        msgs = [("NBIRTH", "", nb.encode(include_dtypes=True))]
        seq += 1
        for dn, pts in devices:
            ms = tuple(make_metric(sp, name, getattr(sp.DataType, dtype), None, now, 0, unit)
                       for name, dtype, unit in pts)
            msgs.append(("DBIRTH", dn, sp.DBirth(timestamp=now, seq=seq % 256,
                                                 metrics=ms).encode(include_dtypes=True)))
            seq += 1
        births[node] = msgs
        steady[node] = []
        for k in range(spec["steady_s"]):
            p, seq = _payloads(ni, devices, spec["t0_ms"] + k * 1000, k, seq, False)
            steady[node].append(p)
        burst[node] = []
        for k in range(spec["burst_s"]):
            p, seq = _payloads(ni, devices, spec["hist_ms"] + k * 1000, k, seq, True)
            burst[node].extend(p)
    clients, online = {}, {}
    for node, port in nodes:
        ev = threading.Event()
        c = mqtt.Client(client_id="bench-" + node, clean_session=True)
        c.on_connect = lambda cl, u, f, rc: cl.subscribe("spBv1.0/STATE/site", 1)
        c.on_message = (lambda e: lambda cl, u, m: b'"online": true' in m.payload and e.set())(ev)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.connect("127.0.0.1", port, 30)
        c.loop_start()
        clients[node], online[node] = c, ev
    print(json.dumps({"ready": True}), flush=True)
    for node, _p in nodes:
        if not online[node].wait(60):
            raise SystemExit("edge %s never saw the site host online" % node)
        for kind, dn, b in births[node]:
            topic = "spBv1.0/%s/%s/%s%s" % (GROUP, kind, node, "/" + dn if dn else "")
            clients[node].publish(topic, b, 1).wait_for_publish(30)
    print(json.dumps({"born": True}), flush=True)
    sys.stdin.readline()     # "go"
    for k in range(spec["steady_s"]):
        d = spec["t0_ms"] / 1000.0 + k - time.time()
        if d > 0:
            time.sleep(d)
        for node, _p in nodes:
            for dn, b in steady[node][k]:
                clients[node].publish("spBv1.0/%s/DDATA/%s/%s" % (GROUP, node, dn), b, 0)
    print(json.dumps({"steady_done": True}), flush=True)
    sys.stdin.readline()     # "burst"
    t_first = time.time()
    infos = []
    for i in range(max(len(v) for v in burst.values())):
        for node, _p in nodes:
            if i < len(burst[node]):
                dn, b = burst[node][i]
                infos.append(clients[node].publish(
                    "spBv1.0/%s/DDATA/%s/%s" % (GROUP, node, dn), b, 1))
    for inf in infos:
        inf.wait_for_publish(120)
    print(json.dumps({"t_first": t_first, "t_last": time.time()}), flush=True)
    sys.stdin.readline()     # "stop"
    for node, _p in nodes:
        clients[node].publish("spBv1.0/%s/NDEATH/%s" % (GROUP, node), sp.NDeath(
            timestamp=int(time.time() * 1000), bd_seq_metric=make_metric(
                sp, "bdSeq", sp.DataType.INT64, 0, int(time.time() * 1000))).encode(
                    include_dtypes=True), 1).wait_for_publish(10)
        clients[node].disconnect()
        clients[node].loop_stop()


# ---- the run ----------------------------------------------------------------------------------
def _quiet(conf, extra=""):
    t = conf.read_text().replace("log_type all", "log_type error\nlog_type warning\nlog_type notice")
    conf.write_text(t + "\nmax_queued_messages 1000000\n" + extra)


def run(quick=False):
    import psycopg
    import tests.test_site as ts
    configs = CONFIGS_QUICK if quick else CONFIGS
    names = ["e%d-%02d" % (e, i) for e, _s, _b in configs for i in range(e)]

    class Site(ts.SiteBroker):
        USERS = tuple((u, u + "-secret") for u in names + ["site", "ops"])

    tmp = Path(tempfile.mkdtemp(prefix="greenedge-sitebench-"))
    pg = ts.Postgres()
    with open(pg.data / "postgresql.conf", "a") as f:
        f.write("\ntrack_commit_timestamp = on\n")
    procs, brokers, out = [], [], {"configs": []}
    try:
        pg.start()
        pg.create_site()
        (tmp / "site").mkdir()
        site = Site(tmp / "site")
        _quiet(tmp / "site" / "mosquitto.conf")
        site.start()
        brokers.append(site)
        (tmp / "ca.pem").write_bytes((tmp / "site" / "ca.pem").read_bytes())
        (tmp / "site.toml").write_text(ts.SITE % {"mq": site.port, "pg": pg.port,
                                                  "wpw": ts.WRITER_PW, "rpw": ts.REPORTER_PW})
        host = subprocess.Popen([sys.executable, "-m", "controller.cli", "site", "-c",
                                 str(tmp / "site.toml"), "--json"], cwd=str(ROOT),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(host)
        adm = pg.admin("site")
        for n_edges, steady_s, burst_s in configs:
            out["configs"].append(_one(ts, adm, tmp, site, brokers, procs, n_edges, steady_s,
                                       burst_s, pg))
        host.send_signal(signal.SIGINT)
        so, se = host.communicate(timeout=120)
        st = json.loads(so)
        out["host"] = {k: st[k] for k in ("messages", "rows", "inserted", "batches", "write_s",
                                          "gaps", "dropped", "db_errors", "bad")}
        adm.close()
    finally:
        if procs and procs[0].poll() is not None and procs[0].returncode:
            print(procs[0].stderr.read()[-3000:], file=sys.stderr)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for b in brokers:
            b.stop()
        pg.stop()
        import shutil
        if not os.environ.get("SITE_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    out["aim"] = {"ratio_min": 0.5, "p99_max_s": 2.0}
    out["quick"] = quick
    return out


def _one(ts, adm, tmp, site, brokers, procs, n_edges, steady_s, burst_s, pg):
    nodes = []
    for i in range(n_edges):
        node = "e%d-%02d" % (n_edges, i)
        d = tmp / node
        d.mkdir()
        lb = ts.LocalBroker(d, site, node)
        _quiet(d / "mosquitto.conf")
        lb.start()
        brokers.append(lb)
        nodes.append([node, lb.port])
    t_enc = time.time()
    est_enc = 0.1 + n_edges * (steady_s + burst_s) * TAGS * 9e-6   # encoding ahead
    t0_ms = int((t_enc + est_enc + 15 + n_edges) * 1000)
    hist_ms = int(t_enc * 1000) - 3600 * 1000
    spec = {"nodes": nodes, "t0_ms": t0_ms, "steady_s": steady_s, "burst_s": burst_s,
            "hist_ms": hist_ms}
    pub = subprocess.Popen([sys.executable, "-m", "bench.site_bench", "--publisher",
                            json.dumps(spec)], cwd=str(ROOT), stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    procs.append(pub)

    def line():
        s = pub.stdout.readline()
        if not s:
            raise RuntimeError("publisher exited (%s)" % pub.poll())
        return json.loads(s)

    line()   # ready
    line()   # born
    nl = [n for n, _p in nodes]
    if time.time() * 1000 > t0_ms:
        raise RuntimeError("births took too long: the steady phase started late")
    pub.stdin.write("go\n")
    pub.stdin.flush()
    line()   # steady_done
    want_steady = n_edges * TAGS * steady_s
    q_steady = ("SELECT count(*) FROM greenedge.metrics WHERE node = ANY(%s) AND time >= %s "
                "AND NOT historical")
    t0 = dt.datetime.fromtimestamp(t0_ms / 1000, dt.timezone.utc)
    _until(lambda: adm.execute(q_steady, (nl, t0)).fetchone()[0] >= want_steady, 60)
    got_steady = adm.execute(q_steady, (nl, t0)).fetchone()[0]
    p50, p99, pmax = adm.execute(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l), percentile_cont(0.99) WITHIN "
        "GROUP (ORDER BY l), max(l) FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp("
        "xmin) - time) AS l FROM greenedge.metrics WHERE node = ANY(%s) AND time >= %s AND "
        "NOT historical) x", (nl, t0)).fetchone()
    # the burst: store-and-forward, as fast as it goes
    groups = {"host": [procs[0].pid], "publisher": [pub.pid], "site_mosquitto": [site.proc.pid],
              "local_mosquittos": [b.proc.pid for b in brokers[-n_edges:]],
              "postgres": [p for p in _pg_pids(pg) if p != adm.info.backend_pid],
              "postgres_bench_polls": [adm.info.backend_pid]}
    cpu0, busy0, w0 = _cpu_snapshot(groups), _machine_busy(), time.monotonic()
    pub.stdin.write("burst\n")
    pub.stdin.flush()
    b = line()
    want_burst = n_edges * TAGS * burst_s
    h0 = dt.datetime.fromtimestamp(hist_ms / 1000, dt.timezone.utc)
    h1 = h0 + dt.timedelta(seconds=burst_s + 1)
    q_b = "FROM greenedge.metrics WHERE node = ANY(%s) AND time >= %s AND time < %s"
    _until(lambda: adm.execute("SELECT count(*) " + q_b, (nl, h0, h1)).fetchone()[0]
           >= want_burst, 180)
    cpu1, busy1, wall = _cpu_snapshot(groups), _machine_busy(), time.monotonic() - w0
    burst_cpu = {k: round((cpu1[k] - cpu0[k]) / wall, 2) for k in groups}
    burst_cpu["machine"] = round((busy1 - busy0) / wall, 2)
    burst_cpu["cores"], burst_cpu["wall_s"] = os.cpu_count(), round(wall, 2)
    got_burst, last = adm.execute("SELECT count(*), extract(epoch FROM max("
                                  "pg_xact_commit_timestamp(xmin))) " + q_b,
                                  (nl, h0, h1)).fetchone()
    e2e = got_burst / (float(last) - b["t_first"])
    pub.stdin.write("stop\n")
    pub.stdin.flush()
    pub.wait(60)
    # the peer: COPY of the same rows from a file into the same shape
    f = pg.dir / ("rows-%d.copy" % n_edges)
    from psycopg import sql
    adm.execute(sql.SQL("COPY (SELECT * FROM greenedge.metrics WHERE node = ANY({}) AND "
                        "time >= {} AND time < {}) TO {}").format(
        sql.Literal(nl), sql.Literal(h0), sql.Literal(h1), sql.Literal(str(f))))
    adm.execute("CREATE TABLE greenedge.peer (LIKE greenedge.metrics INCLUDING DEFAULTS, "
                "UNIQUE (grp, node, device, metric, time)) PARTITION BY RANGE (time)")
    for d in sorted({h0.date(), h1.date()}):
        adm.execute("CREATE TABLE greenedge.peer_%s PARTITION OF greenedge.peer FOR VALUES "
                    "FROM ('%s') TO ('%s')" % (d.strftime("%Y%m%d"), d.isoformat(),
                                               (d + dt.timedelta(days=1)).isoformat()))
    runs = []
    for _ in range(3):
        adm.execute("TRUNCATE greenedge.peer")
        t1 = time.perf_counter()
        adm.execute("COPY greenedge.peer FROM '%s'" % f)
        runs.append(time.perf_counter() - t1)
    n_peer = adm.execute("SELECT count(*) FROM greenedge.peer").fetchone()[0]
    adm.execute("DROP TABLE greenedge.peer")
    copy = n_peer / sorted(runs)[1]
    for lb in brokers[-n_edges:]:
        lb.stop()
    del brokers[-n_edges:]
    return {"edges": n_edges, "tags": TAGS, "steady_s": steady_s,
            "steady_rows": got_steady, "steady_expected": want_steady,
            "latency_p50_s": round(float(p50), 3), "latency_p99_s": round(float(p99), 3),
            "latency_max_s": round(float(pmax), 3),
            "burst_rows": got_burst, "burst_expected": want_burst,
            "e2e_metrics_s": round(e2e), "copy_rows_s": round(copy),
            "ratio": round(e2e / copy, 3), "burst_cpu": burst_cpu,
            "lost": (want_steady - got_steady) + (want_burst - got_burst)}


def _ticks(pid):
    """utime + stime of a process, s (/proc/<pid>/stat; 0 once it is gone)."""
    try:
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _pg_pids(pg):
    """The postmaster and its children (backends, walwriter, checkpointer)."""
    top = int((pg.data / "postmaster.pid").read_text().split()[0])
    out = [top]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()[1]) == top:
                    out.append(int(d))
            except OSError:
                pass
    return out


def _machine_busy():
    """Busy seconds of all cores (/proc/stat: everything but idle and iowait)."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")   # guest is in user


def _cpu_snapshot(groups):
    return {k: sum(_ticks(p) for p in pids) for k, pids in groups.items()}


def _until(cond, timeout):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if cond():
            return True
        time.sleep(0.2)
    return False


def report(r):
    lines = ["site ingest (edges x %d tags at 1 s; end to end vs PostgreSQL COPY from a file)"
             % TAGS]
    for c in r["configs"]:
        lines.append("  %2d edges: steady %d/%d rows, latency p50 %.3f s p99 %.3f s (max %.3f); "
                     "burst %d/%d rows at %d metrics/s, COPY %d rows/s, ratio %.2f; lost %d" % (
                         c["edges"], c["steady_rows"], c["steady_expected"], c["latency_p50_s"],
                         c["latency_p99_s"], c["latency_max_s"], c["burst_rows"],
                         c["burst_expected"], c["e2e_metrics_s"], c["copy_rows_s"], c["ratio"],
                         c["lost"]))
        lines.append("    burst CPU (share of one core): %s" % ", ".join(
            "%s %s" % kv for kv in sorted(c["burst_cpu"].items())))
    lines.append("  host: %s" % json.dumps(r.get("host", {}), sort_keys=True))
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--publisher":
        publisher(json.loads(sys.argv[2]))
    else:
        print(report(run(quick="--quick" in sys.argv)))
