"""The site level (controller/site): two GreenEdge edge services (the fake
line, --mqtt as in tests/test_north_sparkplug.py; one of them on its own local
mosquitto bridged to the site broker) and the site's primary host
application on one real Debian mosquitto (TLS, a password per edge, an ACL: an
edge publishes only under its own node id) and one real PostgreSQL 15 started
here (initdb/pg_ctl in a temp dir, as the unprivileged user greenedge-test when
run as root, a free loopback port, stopped in teardown). The host writes as the
least-privilege role greenedge_writer; reports read as greenedge_reporter.

A paho client (user ops, read-only) records every message the edges publish;
what PostgreSQL holds is compared with it key by key."""

import asyncio
import datetime as dt
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

import paho.mqtt.client as mqtt          # the test extra installs it: missing, this file fails
from pysparkplug import DataType, Metric, NBirth, NData
from pysparkplug._protobuf import Payload

from controller.config import load_config
from controller.config.toml import ConfigError
from hil_tests.clock import ScaledClock
from hil_tests.fakeline import FakeBus, FakeDevice
from tests import async_wait
from tests.test_north_sparkplug import Broker, free_port, need
from tests.plant_toml import fan_plant

try:
    import psycopg
except ImportError:
    pytest.fail("psycopg is missing: pip install 'greenedge[site]' (the test extra pulls it)",
                pytrace=False)

ROOT = Path(__file__).resolve().parent.parent
PGBIN = max(Path("/usr/lib/postgresql").glob("*/bin"),   # Debian: 15 on bookworm
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            default=Path("/usr/lib/postgresql/15/bin"))
PG_USER = "greenedge-test"
SPEEDUP = 6.0
GROUP, HOST_ID = "plant", "site"
EDGES = ("boiler", "compressor")
BRIDGED = "compressor"        # behind its own local mosquitto, bridged to the site broker
ADMIN_PW, WRITER_PW, REPORTER_PW = "admin-secret", "writer-secret", "reporter-secret"

EDGE = fan_plant('%(node)s', 1, 500, tail="""
    [mqtt]
    broker = "mqtts://127.0.0.1:%(port)d"
    group_id = "plant"
    primary_host_id = "site"
    username = "%(node)s"
    password = "%(node)s-secret"
    ca = "ca.pem"
""")

SITE = textwrap.dedent("""
    [site]
    host_id = "site"
    groups = ["plant"]
    stale_s = 3
    [broker]
    url = "mqtts://127.0.0.1:%(mq)d"
    username = "site"
    password = "site-secret"
    ca = "ca.pem"
    [database]
    dsn = "host=127.0.0.1 port=%(pg)d dbname=site user=greenedge_writer"
    password = "%(wpw)s"
    report_dsn = "host=127.0.0.1 port=%(pg)d dbname=site user=greenedge_reporter"
    report_password = "%(rpw)s"
    batch_rows = 20000
    [retention]
    raw_days = 30
    minute_years = 5
    [areas]
    boiler = "Boiler house"
    compressor = "Compressor room"
    """)


# ---- PostgreSQL ------------------------------------------------------------------------------
class Postgres:
    """initdb + pg_ctl in a temp dir (socket there too), on a free port; as root
    the binaries run as PG_USER (initdb refuses root)."""

    def __init__(self):
        if not (PGBIN / "pg_ctl").exists():
            pytest.fail("PostgreSQL is missing (%s/pg_ctl): apt-get install postgresql "
                        "(tools/test.sh does it as root)" % PGBIN, pytrace=False)
        self.prefix = []
        self.dir = Path(tempfile.mkdtemp(prefix="greenedge-pg-"))
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(PG_USER)
            except KeyError:
                shutil.rmtree(self.dir)
                pytest.fail("user %s is missing: useradd -r %s (tools/test.sh does it as root)"
                            % (PG_USER, PG_USER), pytrace=False)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", PG_USER, "--"]
        self.port = free_port()
        self.data = self.dir / "data"
        pwfile = self.dir / "pw"
        pwfile.write_text(ADMIN_PW + "\n")
        if self.prefix:
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._run([str(PGBIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                   "--auth=scram-sha-256", "--pwfile=%s" % pwfile, "-E", "UTF8", "--no-sync"])
        self.started = False

    def _run(self, cmd):
        r = subprocess.run(self.prefix + cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError("%s failed: %s %s" % (cmd[0], r.stdout, r.stderr))

    def start(self):
        self._run([str(PGBIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                   "-w", "-t", "60", "-o",
                   "-p %d -k %s -c listen_addresses=127.0.0.1" % (self.port, self.dir), "start"])
        self.started = True

    def stop(self, keep=False):
        if self.started:
            subprocess.run(self.prefix + [str(PGBIN / "pg_ctl"), "-D", str(self.data), "-m",
                                          "fast", "-w", "-t", "60", "stop"],
                           capture_output=True, timeout=90)
            self.started = False
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def admin(self, dbname="postgres"):
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                               password=ADMIN_PW, dbname=dbname, autocommit=True)

    def create_site(self):
        """The site database with its writer and reporter roles (store.roles_sql)."""
        from controller.site.store import roles_sql
        with self.admin() as c:
            c.execute("CREATE DATABASE site")
        with self.admin("site") as c:
            c.execute(roles_sql("site", "greenedge_writer", "greenedge_reporter"))
            c.execute("ALTER ROLE greenedge_writer PASSWORD '%s'" % WRITER_PW)
            c.execute("ALTER ROLE greenedge_reporter PASSWORD '%s'" % REPORTER_PW)


@pytest.fixture(scope="module")
def pg():
    p = Postgres()
    try:
        p.start()
        p.create_site()
        yield p
    finally:
        p.stop()


def writer(pg):
    return psycopg.connect(host="127.0.0.1", port=pg.port, user="greenedge_writer",
                           password=WRITER_PW, dbname="site")


def reporter(pg):
    return psycopg.connect(host="127.0.0.1", port=pg.port, user="greenedge_reporter",
                           password=REPORTER_PW, dbname="site")


# ---- mosquitto --------------------------------------------------------------------------------
class SiteBroker(Broker):
    """The site broker: TLS, one password per edge (its user name is its node
    id), an ACL that lets an edge publish only under its own node id."""

    USERS = tuple((u, u + "-secret") for u in EDGES + ("gap", "site", "ops"))
    ACL = """
        user site
        topic readwrite spBv1.0/#
        user ops
        topic read spBv1.0/#
        pattern write spBv1.0/+/NBIRTH/%u
        pattern write spBv1.0/+/NDEATH/%u
        pattern write spBv1.0/+/NDATA/%u
        pattern write spBv1.0/+/DBIRTH/%u/+
        pattern write spBv1.0/+/DDATA/%u/+
        pattern write spBv1.0/+/DDEATH/%u/+
        pattern read spBv1.0/+/NCMD/%u
        pattern read spBv1.0/+/DCMD/%u/+
        pattern read spBv1.0/STATE/+
        """


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = SiteBroker(tmp_path_factory.mktemp("site-mosquitto"))
    b.start()
    try:
        yield b
    finally:
        b.stop()


class LocalBroker(SiteBroker):
    """An edge PC's own mosquitto (loopback, anonymous) bridged to the site
    broker over TLS as that edge's user: the edge's topics out, the primary
    host's STATE and the edge's commands in (mosquitto.conf(5), bridges)."""

    def __init__(self, tmp, site, node):
        self.exe = need("mosquitto", "mosquitto")
        self.tmp, self.port, self.proc = tmp, free_port(), None
        (tmp / "mosquitto.conf").write_text(textwrap.dedent("""
            user root
            per_listener_settings false
            allow_anonymous true
            persistence false
            log_dest file %(d)s/mosquitto.log
            log_type all
            listener %(port)d 127.0.0.1
            connection site
            address 127.0.0.1:%(site)d
            bridge_cafile %(ca)s
            remote_username %(node)s
            remote_password %(node)s-secret
            remote_clientid bridge-%(node)s
            cleansession true
            restart_timeout 1 5
            topic spBv1.0/plant/+/%(node)s out 1
            topic spBv1.0/plant/+/%(node)s/+ out 1
            topic spBv1.0/STATE/+ in 1
            topic spBv1.0/plant/NCMD/%(node)s in 1
            topic spBv1.0/plant/DCMD/%(node)s/+ in 1
            """ % {"d": tmp, "port": self.port, "site": site.port,
                   "ca": site.tmp / "ca.pem", "node": node}))


class Client:
    """A paho client on the site broker; every message kept as (topic, Payload)."""

    def __init__(self, broker, user, sub):
        self.msgs, self.lock = [], threading.Lock()
        self.c = mqtt.Client(client_id="test-%s-%s" % (user, time.time_ns()), clean_session=True)
        self.c.username_pw_set(user, user + "-secret")
        self.c.tls_set_context(ssl.create_default_context(cafile=str(broker.tmp / "ca.pem")))
        self.sub = sub
        self.ready = threading.Event()
        self.c.on_connect = lambda c, u, f, rc: c.subscribe(self.sub, 1)
        self.c.on_subscribe = lambda *a: self.ready.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", broker.port, 10)
        self.c.loop_start()
        assert self.ready.wait(20), "test client %s never subscribed" % user

    def _on_message(self, c, u, m):
        if "/STATE/" in m.topic:
            return
        with self.lock:
            self.msgs.append((m.topic, Payload.FromString(m.payload)))

    def of(self, kind, node):
        with self.lock:
            return [p for t, p in self.msgs if t.split("/")[2:4] == [kind, node]]

    def publish(self, topic, payload):
        self.c.publish(topic, payload.encode(include_dtypes=True), 1).wait_for_publish(10)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def value_of(m):
    from controller.site.host import _metric_value
    v = _metric_value(m)
    return None if v is None or isinstance(v, str) else float(v)


def edge_keys(msgs):
    """{(node, device, metric, ts_ms): value} of every BIRTH/DATA metric the edges sent."""
    out = {}
    for topic, p in msgs:
        parts = topic.split("/")
        if parts[2] not in ("NBIRTH", "DBIRTH", "NDATA", "DDATA") or parts[3] not in EDGES:
            continue
        dev = parts[4] if len(parts) > 4 else ""
        for m in p.metrics:
            out[(parts[3], dev, m.name, m.timestamp or p.timestamp)] = (value_of(m),
                                                                       m.is_historical)
    return out


def until(cond, what, timeout_s=30.0):
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(what)


def retained_state(broker, host_id=HOST_ID):
    """The retained spBv1.0/STATE/<host_id> payload (b"" if none), read by a
    fresh subscriber."""
    got, ev = [], threading.Event()
    c = mqtt.Client(client_id="test-state-%s" % time.time_ns(), clean_session=True)
    c.username_pw_set("ops", "ops-secret")
    c.tls_set_context(ssl.create_default_context(cafile=str(broker.tmp / "ca.pem")))
    c.on_connect = lambda cl, u, f, rc: cl.subscribe("spBv1.0/STATE/" + host_id, 1)
    c.on_message = lambda cl, u, m: (got.append(m.payload), ev.set())
    c.connect("127.0.0.1", broker.port, 10)
    c.loop_start()
    ev.wait(2.0)
    c.disconnect()
    c.loop_stop()
    return got[0] if got else b""


def n_events(pg, node, kind, since_s=0.0):
    with writer(pg) as c:
        return c.execute("SELECT count(*) FROM greenedge.events WHERE node = %s AND kind = %s "
                         "AND time >= %s", (node, kind, dt.datetime.fromtimestamp(
                             since_s, dt.timezone.utc))).fetchone()[0]


def db_count(pg, where="", args=()):
    with writer(pg) as c:
        return c.execute("SELECT count(*) FROM greenedge.metrics " + where, args).fetchone()[0]


def test_site_host_two_edges(pg, broker, tmp_path):
    from controller.cli import main as cli
    from controller.runtime.service import Service, build_lines
    from controller.site.cli import writer_factory
    from controller.site.config import load_site
    from controller.site.host import PrimaryHost
    shutil.copy(broker.tmp / "ca.pem", tmp_path / "ca.pem")
    (tmp_path / "site.toml").write_text(SITE % {"mq": broker.port, "pg": pg.port,
                                                "wpw": WRITER_PW, "rpw": REPORTER_PW})
    scfg = load_site(tmp_path / "site.toml")
    obs = Client(broker, "ops", "spBv1.0/#")
    gap = Client(broker, "gap", "spBv1.0/%s/NCMD/gap" % GROUP)
    host = PrimaryHost(scfg, writer_factory(scfg)).start()
    assert host.connected.wait(20), "the site host never connected"
    svcs, buses, out = [], [], {}
    (tmp_path / "local").mkdir()
    local = LocalBroker(tmp_path / "local", broker, BRIDGED)   # one edge behind a bridge
    local.start()
    for node in EDGES:
        d = tmp_path / node
        d.mkdir()
        shutil.copy(broker.tmp / "ca.pem", d / "ca.pem")
        text = EDGE % {"node": node, "port": broker.port}
        if node == BRIDGED:    # to its own local broker, plain mqtt on loopback
            text = text.replace("mqtts://127.0.0.1:%d" % broker.port,
                                "mqtt://127.0.0.1:%d" % local.port)
        (d / "plant.toml").write_text(text)
        cfg = load_config(d / "plant.toml")
        bus = FakeBus([FakeDevice("motor", 1)], latency_s=0.001)
        svcs.append(Service(cfg, live=False, historian=False,
                            clock=ScaledClock(SPEEDUP, time.time()),
                            lines=build_lines(cfg, None, client_factory=bus.client)))
        buses.append(bus)
    host2 = None

    def wait(cond, what, timeout_s=40.0):   # PostgreSQL polled: every 0.1 s is enough
        return async_wait.until(cond, what, timeout_s, poll_s=0.1)

    async def run():
        nonlocal host2
        tasks = [asyncio.create_task(s.run(300.0)) for s in svcs]
        ph = asyncio.create_task(async_wait.physics(buses, SPEEDUP))
        try:
            await wait(lambda: all(s.north and s.north[0].live for s in svcs),
                       "the edges never went live (STATE from the site host)")
            nodes = [s.north[0] for s in svcs]
            await wait(lambda: all(db_count(pg, "WHERE node = %s AND device = 'fan1'", (n,)) > 20
                                   for n in EDGES), "no rows in PostgreSQL for both edges")
            # a seq gap: the host asks that node for a rebirth (NCMD)
            t_p = int(time.time() * 1000)     # one ms apart: the key has the timestamp
            m = lambda v: Metric(timestamp=t_p + int(v), name="probe",  # noqa: E731
                                 datatype=DataType.DOUBLE, value=v)
            bd = Metric(timestamp=int(time.time() * 1000), name="bdSeq",
                        datatype=DataType.INT64, value=0)
            gap.publish("spBv1.0/plant/NBIRTH/gap", NBirth(timestamp=int(time.time() * 1000),
                                                           seq=0, metrics=(bd, m(1.0))))
            gap.publish("spBv1.0/plant/NDATA/gap", NData(timestamp=int(time.time() * 1000),
                                                         seq=1, metrics=(m(2.0),)))
            await asyncio.sleep(0.5)
            out["ncmd_before_gap"] = len(gap.msgs)
            gap.publish("spBv1.0/plant/NDATA/gap", NData(timestamp=int(time.time() * 1000),
                                                         seq=5, metrics=(m(3.0),)))
            await wait(lambda: gap.msgs, "no rebirth request (NCMD) after a seq gap")
            # an edge publishing under another node's id: the broker's ACL drops it
            gap.publish("spBv1.0/plant/NDATA/boiler", NData(
                timestamp=int(time.time() * 1000), seq=7, metrics=(Metric(
                    timestamp=int(time.time() * 1000), name="intruder",
                    datatype=DataType.DOUBLE, value=666.0),)))
            await asyncio.sleep(1.0)
            # the bridged edge's link down (its local broker killed: no will crosses
            # the bridge, as when the uplink is cut): stale, not dead
            local.proc.kill()
            local.proc.wait(10)
            await wait(lambda: host.status()["nodes"]["plant/%s" % BRIDGED]["stale"],
                       "the host never marked the bridged edge stale")
            out["stale"] = dict(host.status()["nodes"]["plant/%s" % BRIDGED])
            await asyncio.to_thread(local.start)
            await wait(lambda: nodes[1].live and nodes[1].buffer.rows == 0
                       and not host.status()["nodes"]["plant/%s" % BRIDGED]["stale"],
                       "the bridged edge never came back", 60.0)
            await asyncio.sleep(1.0)
            # the site host away for 60 s of plant time: the edges hold store-and-forward
            stored0 = [n.buffer.stored for n in nodes]
            out["t_stop"] = time.time()
            await asyncio.to_thread(host.stop)   # not on the edges' event loop
            await wait(lambda: all(not n.live for n in nodes), "edges still live without STATE")
            await asyncio.sleep(60.0 / SPEEDUP)
            out["buffered"] = [n.buffer.stored - s0 for n, s0 in zip(nodes, stored0)]
            out["t_restart"] = time.time()
            # back as the command a user runs: greenedge site -c site.toml
            host2 = subprocess.Popen([sys.executable, "-m", "controller.cli", "site", "-c",
                                      str(tmp_path / "site.toml"), "--json"],
                                     cwd=str(ROOT), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            await wait(lambda: all(n.live and n.buffer.rows == 0 and not n._inflight
                                   for n in nodes), "the buffers were never forwarded", 60.0)
            await asyncio.sleep(1.5)
        finally:
            ph.cancel()
            for s in svcs:
                s.stop()
            for t in tasks:
                await t
    try:
        asyncio.run(run())
        until(lambda: all(n_events(pg, node, "NDEATH", out["t_restart"]) == 1
                          for node in EDGES),
              "the restarted host never recorded the edges' NDEATH")
        host2.send_signal(signal.SIGINT)
        so, se = host2.communicate(timeout=60)
        assert host2.returncode == 0, se
        out["host2"] = json.loads(so)
    finally:
        if host2 is None:
            host.stop()
        elif host2.poll() is None:
            host2.kill()
            host2.wait(10)
        obs.close()
        gap.close()
        local.stop()
    # the bridged edge reached the site broker only through its local broker's bridge
    site_log = (broker.tmp / "mosquitto.log").read_text()
    assert "as bridge-%s" % BRIDGED in site_log
    assert "as greenedge-plant-%s " % BRIDGED not in site_log
    assert "as greenedge-plant-%s " % BRIDGED in (local.tmp / "mosquitto.log").read_text()
    st2 = out["host2"]
    assert st2["db_errors"] == 0 and st2["bad"] == 0 and st2["rebirths"] == 0
    assert st2["inserted"] > 0 and st2["queued"] == 0
    assert {k: v["online"] for k, v in st2["nodes"].items()} == {
        "plant/boiler": False, "plant/compressor": False}

    # every metric an edge sent reached PostgreSQL once, with its value and timestamp
    sent = edge_keys(obs.msgs)
    with writer(pg) as c:
        rows = c.execute("SELECT node, device, metric, "
                         "(extract(epoch FROM time) * 1000)::bigint, value, historical "
                         "FROM greenedge.metrics WHERE node = ANY(%s)", (list(EDGES),)).fetchall()
        events = c.execute("SELECT node, kind, detail FROM greenedge.events").fetchall()
        probes = c.execute("SELECT value FROM greenedge.metrics WHERE node = 'gap' AND "
                           "metric = 'probe' ORDER BY time").fetchall()
        intruder = c.execute("SELECT count(*) FROM greenedge.metrics WHERE metric = "
                             "'intruder'").fetchone()[0]
    got = {(n, d, mt, t): (v, h) for n, d, mt, t, v, h in rows}
    assert len(got) == len(rows)
    assert set(got) == set(sent), (len(set(sent) - set(got)), len(set(got) - set(sent)))
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in sent.items()}
    for node in EDGES:
        assert sum(1 for k in got if k[0] == node and k[1] == "fan1") > 50, node
    # the outage: each edge buffered, and its historical values landed (the set
    # above: every one, once) and span the outage; a few share their key with
    # the value the next DBIRTH repeats (the same sample), kept as the birth's row
    assert all(b > 20 for b in out["buffered"]), out["buffered"]
    for node, buffered in zip(EDGES, out["buffered"]):
        hist = sorted(k[3] for k, v in got.items() if k[0] == node and k[1] == "fan1" and v[1])
        assert len(hist) > 20, node
        pv = sorted(k[3] for k in got if k[0] == node and k[1:3] == ("fan1", "process_pv"))
        assert max(b - a for a, b in zip(pv, pv[1:])) < 3000, node    # no hole in the trend
        assert hist[0] / 1000 <= out["t_stop"] + 3 and hist[-1] / 1000 >= out["t_restart"] - 3
        assert sum(1 for k, v in got.items() if k[0] == node and v[1]) >= 0.9 * buffered
    # the seq gap: one NCMD Node Control/Rebirth = true to that node, an event
    assert out["ncmd_before_gap"] == 0
    ncmd = gap.msgs[0][1]
    assert [(mt.name, mt.boolean_value) for mt in ncmd.metrics] == [("Node Control/Rebirth",
                                                                       True)]
    assert ("gap", "seq_gap", "NDATA seq 5, expected 2") in events
    assert [v for (v,) in probes] == [1.0, 2.0, 3.0]
    # the ACL: nothing published under another node's id got through
    assert intruder == 0
    assert "Denied PUBLISH from" in (broker.tmp / "mosquitto.log").read_text()
    # stale while its link was down, never dead; fresh again once back
    assert out["stale"]["online"] is True and out["stale"]["stale"] is True
    kinds = [k for n, k, _ in events if n == BRIDGED]
    assert kinds.count("stale") == 1 and kinds.count("fresh") == 1
    assert "stale" not in [k for n, k, _ in events if n == "boiler"]
    for node in EDGES:
        kinds = [k for n, k, _ in events if n == node]
        assert kinds.count("NBIRTH") >= 2 and kinds.count("NDEATH") >= 2, (node, kinds)

    # the report, as the read-only role: per area, and the total, equal the sum
    # of the increases of each edge's own energy KPI as it published them
    t0 = min(k[3] for k in sent) / 1000 - 1
    t1 = max(k[3] for k in sent) / 1000 + 1
    csv_file = tmp_path / "report.csv"
    iso = lambda t: dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()  # noqa: E731
    assert cli(["site", "report", "-c", str(tmp_path / "site.toml"), "--from", iso(t0),
                "--to", iso(t1), "--csv", str(csv_file)]) == 0
    lines = [ln.split(",") for ln in csv_file.read_text().splitlines()]
    assert lines[0][:4] == ["area", "node", "energy_kwh", "co2_kg"]   # then the site KPIs
    by_node = {ln[1]: (ln[0], float(ln[2])) for ln in lines[1:]}
    want = {}
    for node in EDGES:
        kp = sorted((k[3], v[0]) for k, v in sent.items()
                    if k[0] == node and k[2] == "KPIs/energy_kwh" and v[0] is not None)
        want[node] = sum(max(b - a, 0.0) for (_, a), (_, b) in zip(kp, kp[1:]))
        assert want[node] > 0, node
    assert by_node["boiler"][0] == "Boiler house"
    assert by_node["compressor"][0] == "Compressor room"
    for node in EDGES:
        assert by_node[node][1] == pytest.approx(want[node], abs=1e-3)
    assert by_node[""][0] == "total"
    assert by_node[""][1] == pytest.approx(sum(want.values()), abs=2e-3)
    # least privilege: the reporter reads, and cannot write
    with reporter(pg) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("INSERT INTO greenedge.events VALUES (now(), 'x', 'x', '', 'x', '')")


def test_store_idempotent_batches_and_rate(pg, capsys):
    """COPY + INSERT ON CONFLICT DO NOTHING: 60,000 rows in batches of 5,000,
    then the same batches replayed (store-and-forward sent twice): nothing
    added. The rate is printed (docs/site.md quotes it)."""
    from controller.site import store as st
    s = st.Store(st.connect("host=127.0.0.1 port=%d dbname=site user=greenedge_writer "
                            "password=%s" % (pg.port, WRITER_PW)))
    t_base = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=1)
    rows = [(t_base + dt.timedelta(seconds=i // 200), "bench", "edge%d" % (i % 4),
             "dev%d" % (i % 10), "m%d" % (i % 200), float(i), None, 192, False)
            for i in range(60000)]
    t0 = time.perf_counter()
    n = sum(s.write(rows[i:i + 5000]) for i in range(0, len(rows), 5000))
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = sum(s.write(rows[i:i + 5000]) for i in range(0, len(rows), 5000))
    replay_s = time.perf_counter() - t0
    # a birth's null placeholder and a sample in the same millisecond: the value
    # wins, in one batch or across two; a stored value is never overwritten
    k = lambda m, v: (t_base, "bench", "nulls", "", m, v, None, None, False)  # noqa: E731
    s.write([k("a", None), k("a", 5.0), k("c", 3.0)])
    s.write([k("b", None)])
    s.write([k("b", 7.0), k("c", None), k("a", 4.0)])
    s.close()
    with writer(pg) as c:
        got = dict(c.execute("SELECT metric, value FROM greenedge.metrics WHERE node = "
                             "'nulls'").fetchall())
    assert got == {"a": 5.0, "b": 7.0, "c": 3.0}
    assert n == 60000 and again == 0
    assert db_count(pg, "WHERE grp = 'bench' AND node <> 'nulls'") == 60000
    with capsys.disabled():
        print("\nsite store: %.0f rows/s new, %.0f rows/s replayed (all duplicates)"
              % (60000 / first_s, 60000 / replay_s))


def test_retention_rolls_up_and_drops_old_days(pg):
    from controller.site import store as st
    s = st.Store(st.connect("host=127.0.0.1 port=%d dbname=site user=greenedge_writer "
                            "password=%s" % (pg.port, WRITER_PW)))
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)).replace(
        hour=12, minute=0, second=0, microsecond=0)
    rows = [(old + dt.timedelta(seconds=i), "ret", "e", "d", "power_kw", float(i), None, 192,
             False) for i in range(120)]
    s.write(rows)
    assert old.date() in s.days
    dropped, written = st.retention(s, raw_days=30, minute_years=5)
    s.close()
    assert dropped >= 1 and written >= 2
    assert db_count(pg, "WHERE grp = 'ret'") == 0
    with writer(pg) as c:
        got = c.execute("SELECT minute, mean, min, max, n FROM greenedge.metrics_1min WHERE "
                        "grp = 'ret' ORDER BY minute").fetchall()
        parts = [r[0] for r in c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'greenedge'").fetchall()]
    assert [(r[1], r[2], r[3], r[4]) for r in got] == [(29.5, 0.0, 59.0, 60),
                                                       (89.5, 60.0, 119.0, 60)]
    assert got[0][0] == old
    assert "metrics_p" + old.strftime("%Y%m%d") not in parts
    assert "metrics_p" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d") in parts


def test_site_config_errors(tmp_path):
    from controller.site.config import load_site
    good = SITE % {"mq": 8883, "pg": 5432, "wpw": "w", "rpw": "r"}
    cases = [
        (good.replace('url = "mqtts://127.0.0.1:8883"\n', ""), "broker.url: missing"),
        (good.replace("mqtts://127.0.0.1", "mqtt://192.0.2.1"), "only to a loopback"),
        (good.replace('dsn = "host', 'dsnx = "host'), "database.dsn: missing"),
        (good.replace('dsn = "host=127.0.0.1', 'dsn = "host=127.0.0.1 ='), "not a libpq DSN"),
        (good.replace("raw_days = 30", "raw_days = 0"), "raw_days: 0 outside 1..3650"),
        (good.replace('host_id = "site"', 'host_id = "a/b"'), "host_id"),
        (good.replace('boiler = "Boiler house"', "boiler = 3"), "areas.boiler"),
        (good + "\n[extra]\n", "extra: unknown key"),
    ]
    for text, msg in cases:
        (tmp_path / "s.toml").write_text(text)
        with pytest.raises(ConfigError, match=msg):
            load_site(tmp_path / "s.toml")
    (tmp_path / "s.toml").write_text(good)
    cfg = load_site(tmp_path / "s.toml")
    assert cfg["retention"] == {"raw_days": 30, "minute_years": 5.0}
    assert cfg["broker"]["ca"] == tmp_path / "ca.pem" and cfg["broker"]["tls"]


def test_ingest_rate_end_to_end_against_copy(pg, broker, tmp_path, capsys):
    """Metrics/s from a Sparkplug publisher through mosquitto and the site host
    into PostgreSQL (committed), beside PostgreSQL's own COPY of the same rows
    from a file into a table of the same shape (the writer's limit), in the
    same run. Printed for docs/site.md; every metric must arrive once."""
    from pysparkplug import DBirth, DData
    shutil.copy(broker.tmp / "ca.pem", tmp_path / "ca.pem")
    (tmp_path / "site.toml").write_text(SITE % {"mq": broker.port, "pg": pg.port,
                                                "wpw": WRITER_PW, "rpw": REPORTER_PW})
    devices, metrics, rounds = 10, 200, 40        # 80,000 metric values
    node = "gap"
    t0_ms = int(time.time() * 1000) - rounds * 1000
    seq = iter(range(10 ** 6))
    msgs = []
    bd = Metric(timestamp=t0_ms, name="bdSeq", datatype=DataType.INT64, value=1)
    msgs.append(("spBv1.0/plant/NBIRTH/%s" % node,
                 NBirth(timestamp=t0_ms, seq=next(seq) % 256, metrics=(bd,))))
    for d in range(devices):
        ms = tuple(Metric(timestamp=t0_ms, name="m%d" % i, datatype=DataType.DOUBLE, value=0.0)
                   for i in range(metrics))
        msgs.append(("spBv1.0/plant/DBIRTH/%s/d%d" % (node, d),
                     DBirth(timestamp=t0_ms, seq=next(seq) % 256, metrics=ms)))
    for r in range(1, rounds + 1):
        for d in range(devices):
            ms = tuple(Metric(timestamp=t0_ms + r * 1000, name="m%d" % i,
                              datatype=DataType.DOUBLE, value=float(r * i)) for i in range(metrics))
            msgs.append(("spBv1.0/plant/DDATA/%s/d%d" % (node, d),
                         DData(timestamp=t0_ms + r * 1000, seq=next(seq) % 256, metrics=ms)))
    raw = [(t, p.encode(include_dtypes=True)) for t, p in msgs]
    total = devices * metrics * (rounds + 1) + 1
    # the host as its own process (the command), so the publisher here does
    # not share its interpreter
    host = subprocess.Popen([sys.executable, "-m", "controller.cli", "site", "-c",
                             str(tmp_path / "site.toml"), "--json"], cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pub = Client(broker, "gap", "spBv1.0/plant/NCMD/gap")
    try:
        until(lambda: b"\"online\": true" in
              retained_state(broker), "the site host never went online")
        base = db_count(pg, "WHERE node = 'gap' AND device LIKE 'd%%'")
        t_start = time.perf_counter()
        for topic, payload in raw:
            pub.c.publish(topic, payload, 0)
        until(lambda: db_count(pg, "WHERE node = 'gap' AND (device LIKE 'd%%' OR "
                                   "metric = 'bdSeq')") - base >= total,
              "not every metric reached PostgreSQL", 120.0)
        e2e_s = time.perf_counter() - t_start
        host.send_signal(signal.SIGINT)
        so, se = host.communicate(timeout=60)
        assert host.returncode == 0, se
        st = json.loads(so)
    finally:
        pub.close()
        if host.poll() is None:
            host.kill()
            host.wait(10)
    assert st["gaps"] == 0 and st["db_errors"] == 0
    # the peer: COPY of the same rows from a file, as the writer, into the same shape
    f = tmp_path / "rows.tsv"
    with f.open("w") as out:
        for topic, p in msgs:
            dev = topic.split("/")[4] if topic.count("/") > 3 else ""
            for m in p.metrics:
                out.write("%s\tplant\tpeer\t%s\t%s\t%r\t\\N\t\\N\tf\n" % (
                    dt.datetime.fromtimestamp(m.timestamp / 1000, dt.timezone.utc).isoformat(),
                    dev, m.name, float(m.value)))
    with writer(pg) as c:
        c.execute("CREATE TABLE greenedge.peer (LIKE greenedge.metrics INCLUDING ALL)")
        c.commit()
        runs = []
        for _ in range(3):     # the median of three: one COPY of 82k rows is noisy here
            c.execute("TRUNCATE greenedge.peer")
            c.commit()
            t1 = time.perf_counter()
            with c.cursor() as cur, cur.copy("COPY greenedge.peer FROM STDIN") as cp:
                with f.open("rb") as src:
                    while chunk := src.read(1 << 16):
                        cp.write(chunk)
            c.commit()
            runs.append(time.perf_counter() - t1)
        copy_s = sorted(runs)[1]
        n_peer = c.execute("SELECT count(*) FROM greenedge.peer").fetchone()[0]
        c.execute("DROP TABLE greenedge.peer")
        c.commit()
    assert n_peer == total
    e2e, copy = total / e2e_s, total / copy_s
    with capsys.disabled():
        print("\nsite ingest: %d metrics end to end %.0f/s (host write %.2f s in %d batches), "
              "COPY from a file %.0f/s, ratio %.2f" % (total, e2e, st["write_s"],
                                                       st["batches"], copy, e2e / copy))
    assert e2e > 0.05 * copy     # a floor that only a broken pipeline misses


@pytest.mark.parametrize("queue_max", [None, 150])
def test_database_outage_keeps_rows_in_order(pg, broker, tmp_path, queue_max):
    """Data before any NBIRTH: a rebirth request. PostgreSQL stopped while an
    edge publishes: the host keeps the rows, reconnects when it is back and
    writes every one (none twice), in order."""
    from pysparkplug import DBirth, DData
    from controller.site.cli import writer_factory
    from controller.site.config import load_site
    from controller.site.host import PrimaryHost
    shutil.copy(broker.tmp / "ca.pem", tmp_path / "ca.pem")
    (tmp_path / "site.toml").write_text(SITE % {"mq": broker.port, "pg": pg.port,
                                                "wpw": WRITER_PW, "rpw": REPORTER_PW})
    scfg = load_site(tmp_path / "site.toml")
    if queue_max:   # memory only: the newest beyond queue_max_rows are dropped
        scfg["database"]["queue_max_rows"] = queue_max
        scfg["database"]["spool_dir"] = None
    host = PrimaryHost(scfg, writer_factory(scfg)).start()
    pub = Client(broker, "gap", "spBv1.0/plant/NCMD/gap")
    t0 = int(time.time() * 1000)
    kept = 200 if queue_max is None else queue_max   # of the 200 sent in the outage
    seq = iter(range(10 ** 6))

    def send(kind, payload):
        pub.publish("spBv1.0/plant/%s/gap%s" % (kind, "/out" if kind[0] == "D" else ""), payload)

    def data(i):
        return DData(timestamp=t0 + i, seq=next(seq) % 256, metrics=(Metric(
            timestamp=t0 + i, name="v", datatype=DataType.DOUBLE, value=float(i)),))
    try:
        assert host.connected.wait(20)
        # data from a node whose birth this host has not seen: it asks for one
        pub.publish("spBv1.0/plant/NDATA/gap", NData(timestamp=t0, seq=17, metrics=(Metric(
            timestamp=t0, name="early", datatype=DataType.DOUBLE, value=1.0),)))
        until(lambda: pub.msgs, "no rebirth request for data before any NBIRTH")
        send("NBIRTH", NBirth(timestamp=t0, seq=next(seq), metrics=(Metric(
            timestamp=t0, name="bdSeq", datatype=DataType.INT64, value=9),)))
        send("DBIRTH", DBirth(timestamp=t0, seq=next(seq), metrics=(Metric(
            timestamp=t0, name="v", datatype=DataType.DOUBLE, value=0.0),)))
        for i in range(1, 101):
            send("DDATA", data(i))
        until(lambda: db_count(pg, "WHERE device = 'out' AND time >= %s",
                               (dt.datetime.fromtimestamp(t0 / 1000, dt.timezone.utc),)) == 101,
              "rows before the outage")
        pg.stop(keep=True)
        for i in range(101, 301):
            send("DDATA", data(i))
        until(lambda: host.status()["db_errors"] >= 1, "the writer never saw the outage")
        time.sleep(1.0)
        pg.start()
        until(lambda: host.status()["queued"] == 0 and host.status()["db_errors"] >= 1
              and db_count(pg, "WHERE device = 'out' AND time >= %s", (
                  dt.datetime.fromtimestamp(t0 / 1000, dt.timezone.utc),)) == 101 + kept,
              "rows held over the outage never written", 60.0)
        s = host.status()
    finally:
        pub.close()
        host.stop()
    assert s["gaps"] == 0 and s["queued"] == 0 and s["rebirths"] == 1
    assert [(m.name, m.boolean_value) for m in pub.msgs[0][1].metrics] == [
        ("Node Control/Rebirth", True)]
    with writer(pg) as c:
        vals = [v for (v,) in c.execute("SELECT value FROM greenedge.metrics WHERE device = "
                                        "'out' AND time >= %s ORDER BY time", (
                                            dt.datetime.fromtimestamp(t0 / 1000,
                                                                      dt.timezone.utc),)
                                        ).fetchall()]
        full = c.execute("SELECT count(*) FROM greenedge.events WHERE kind = 'queue_full' "
                         "AND time >= %s", (dt.datetime.fromtimestamp(t0 / 1000,
                                                                      dt.timezone.utc),)
                         ).fetchone()[0]
    assert vals == [float(i) for i in range(101 + kept)]     # the newest dropped, if any
    assert s["dropped"] == 200 - kept and full == (1 if queue_max else 0)


def test_database_outage_beyond_memory_goes_to_disk_and_survives_a_restart(pg, broker,
                                                                           tmp_path):
    """queue_max_rows = 150 and PostgreSQL stopped while 400 rows come: the
    oldest go to the on-disk spool instead of the newest being dropped; the
    host stopped and started again while the database is still away keeps
    them (and what it held in memory) on disk; once the database is back the
    new host writes every row once, none dropped."""
    from pysparkplug import DBirth, DData
    from controller.site.cli import writer_factory
    from controller.site.config import load_site
    from controller.site.host import PrimaryHost
    shutil.copy(broker.tmp / "ca.pem", tmp_path / "ca.pem")
    (tmp_path / "site.toml").write_text(SITE % {"mq": broker.port, "pg": pg.port,
                                                "wpw": WRITER_PW, "rpw": REPORTER_PW})
    scfg = load_site(tmp_path / "site.toml")
    scfg["database"]["queue_max_rows"] = 150
    assert scfg["database"]["spool_dir"] == tmp_path / "spool"    # the default
    host = PrimaryHost(scfg, writer_factory(scfg)).start()
    pub = Client(broker, "gap", "spBv1.0/plant/NCMD/gap")
    t0 = int(time.time() * 1000)
    since = dt.datetime.fromtimestamp(t0 / 1000, dt.timezone.utc)
    seq = iter(range(10 ** 6))

    def send(kind, payload):
        pub.publish("spBv1.0/plant/%s/gap%s" % (kind, "/disk" if kind[0] == "D" else ""),
                    payload)

    def data(i):
        return DData(timestamp=t0 + i, seq=next(seq) % 256, metrics=(Metric(
            timestamp=t0 + i, name="v", datatype=DataType.DOUBLE, value=float(i)),))

    def stored():
        return db_count(pg, "WHERE node = 'gap' AND device = 'disk' AND time >= %s", (since,))
    stopped = False
    try:
        assert host.connected.wait(20)
        send("NBIRTH", NBirth(timestamp=t0, seq=next(seq), metrics=(Metric(
            timestamp=t0, name="bdSeq", datatype=DataType.INT64, value=3),)))
        send("DBIRTH", DBirth(timestamp=t0, seq=next(seq), metrics=(Metric(
            timestamp=t0, name="v", datatype=DataType.DOUBLE, value=0.0),)))
        until(lambda: stored() == 1, "the birth's row")
        pg.stop(keep=True)
        for i in range(1, 401):
            send("DDATA", data(i))
            if i % 50 == 0:
                time.sleep(0.3)   # the writer takes them in turn (and fails)
        until(lambda: host.status()["spooled"] > 0, "nothing went to the spool")
        until(lambda: host.status()["messages"] >= 402, "the host never got every message")
        first = host.status()
        host.stop()                           # the database still away
        stopped = True
        assert first["dropped"] == 0
        pg.start()
        host = PrimaryHost(scfg, writer_factory(scfg)).start()
        stopped = False
        until(lambda: stored() == 401, "rows from the spool never written", 60.0)
        until(lambda: host.status()["spool_rows"] == 0, "the spool never emptied")
        s = host.status()
    finally:
        pub.close()
        if not stopped:
            host.stop()
    assert s["dropped"] == 0 and s["spool_bad"] == 0
    with writer(pg) as c:
        vals = [v for (v,) in c.execute(
            "SELECT value FROM greenedge.metrics WHERE node = 'gap' AND device = 'disk' "
            "AND time >= %s ORDER BY time", (since,)).fetchall()]
    assert vals == [float(i) for i in range(401)]
    assert not list((tmp_path / "spool").glob("seg-*"))


def test_own_state_kept_online_and_tls_errors(pg, broker, tmp_path):
    """Another client says the host is offline on its STATE topic while it
    runs: the host answers online again (retained, what a connecting edge
    reads). A CA file that does not load stops the start, naming it."""
    from controller.errors import UserError
    from controller.site.cli import writer_factory
    from controller.site.config import load_site
    from controller.site.host import PrimaryHost
    (tmp_path / "site.toml").write_text(SITE % {"mq": broker.port, "pg": pg.port,
                                                "wpw": WRITER_PW, "rpw": REPORTER_PW})
    (tmp_path / "ca.pem").write_text("not a certificate")
    scfg = load_site(tmp_path / "site.toml")
    writers = lambda: [t for t in threading.enumerate()  # noqa: E731
                       if t.name == "greenedge-site-db"]
    before = writers()
    with pytest.raises(UserError, match="cannot load ca .*ca.pem"):
        PrimaryHost(scfg, writer_factory(scfg)).start()
    assert writers() == before      # no writer thread left behind on a closed connection
    shutil.copy(broker.tmp / "ca.pem", tmp_path / "ca.pem")
    host = PrimaryHost(scfg, writer_factory(scfg)).start()
    other = mqtt.Client(client_id="test-other-%s" % time.time_ns(), clean_session=True)
    other.username_pw_set("site", "site-secret")
    other.tls_set_context(ssl.create_default_context(cafile=str(broker.tmp / "ca.pem")))
    try:
        assert host.connected.wait(20)
        until(lambda: b'"online": true' in retained_state(broker), "never online")
        other.connect("127.0.0.1", broker.port, 10)
        other.loop_start()
        other.publish("spBv1.0/STATE/site", json.dumps(
            {"online": False, "timestamp": host.state_ts - 1000}), 1, True).wait_for_publish(10)
        until(lambda: n_events(pg, "", "state_republished") >= 1, "no STATE online again")
        assert json.loads(retained_state(broker)) == {"online": True,
                                                      "timestamp": host.state_ts}
    finally:
        other.disconnect()
        other.loop_stop()
        host.stop()
    assert json.loads(retained_state(broker))["online"] is False     # a clean stop says so


def test_malformed_messages_do_not_stop_ingestion(pg, broker, tmp_path):
    """One malformed Sparkplug message must not stop the host: a NUL in a
    metric name or a string value (PostgreSQL text cannot hold U+0000), a
    metric stamped 2^63-1 ms (no datetime, and a day partition retention would
    never drop), an NBIRTH and an NDEATH whose bdSeq is a string. Each is
    counted and not stored, the MQTT thread lives on (STATE stays online) and
    the good values before and after land. Then rows the database itself
    refuses (a NUL row handed straight to the writer, for a day with no
    partition yet) are isolated: the rest of their batch is written, the
    refused ones counted with one bad_rows event, and later rows still land."""
    from pysparkplug import NDeath
    from controller.site.cli import writer_factory
    from controller.site.config import load_site
    from controller.site.host import PrimaryHost
    shutil.copy(broker.tmp / "ca.pem", tmp_path / "ca.pem")
    (tmp_path / "site.toml").write_text(SITE % {"mq": broker.port, "pg": pg.port,
                                                "wpw": WRITER_PW, "rpw": REPORTER_PW})
    scfg = load_site(tmp_path / "site.toml")
    host = PrimaryHost(scfg, writer_factory(scfg)).start()
    pub = Client(broker, "gap", "spBv1.0/plant/NCMD/gap")
    t0 = int(time.time() * 1000)
    since = dt.datetime.fromtimestamp(t0 / 1000, dt.timezone.utc)

    def dbl(name, v, ts=None):
        return Metric(timestamp=t0 if ts is None else ts, name=name, datatype=DataType.DOUBLE,
                      value=v)

    def txt(name, v):
        return Metric(timestamp=t0, name=name, datatype=DataType.STRING, value=v)

    def stored(metric):
        return db_count(pg, "WHERE node = 'gap' AND device = '' AND metric = %s AND time >= %s",
                        (metric, since))
    try:
        assert host.connected.wait(20)
        until(lambda: b'"online": true' in retained_state(broker), "never online")
        pub.publish("spBv1.0/plant/NBIRTH/gap", NBirth(timestamp=t0, seq=0, metrics=(
            Metric(timestamp=t0, name="bdSeq", datatype=DataType.INT64, value=4),
            dbl("m/good0", 0.0))))
        pub.publish("spBv1.0/plant/NDATA/gap", NData(timestamp=t0, seq=1, metrics=(
            txt("m/nul\x00name", "x"), txt("m/nul_text", "a\x00b"), dbl("m/good1", 1.0))))
        pub.publish("spBv1.0/plant/NDATA/gap", NData(timestamp=t0 + 1, seq=2, metrics=(
            dbl("m/far", 2.0, ts=2 ** 63 - 1), dbl("m/good2", 2.0, ts=t0 + 1))))
        # a string bdSeq: the NBIRTH and the NDEATH are refused whole, the session stays
        pub.publish("spBv1.0/plant/NBIRTH/gap", NBirth(timestamp=t0 + 2, seq=0, metrics=(
            txt("bdSeq", "five"), dbl("m/rebirth", 9.0, ts=t0 + 2))))
        pub.publish("spBv1.0/plant/NDEATH/gap", NDeath(timestamp=t0 + 3,
                                                           bd_seq_metric=txt("bdSeq", "five")))
        pub.publish("spBv1.0/plant/NDATA/gap", NData(timestamp=t0 + 4, seq=3, metrics=(
            dbl("m/good3", 3.0, ts=t0 + 4),)))
        until(lambda: stored("m/good3") == 1, "a good value after the malformed ones never "
              "landed (the MQTT thread died, or the writer is stuck)")
        s = host.status()
        assert host.client._thread is not None and host.client._thread.is_alive()
        assert json.loads(retained_state(broker))["online"] is True
        assert s["bad"] == 2 and s["bad_metrics"] == 2 and s["too_new"] == 1, s
        assert s["gaps"] == 0 and s["rebirths"] == 0 and s["db_errors"] == 0, s
        assert s["nodes"]["plant/gap"]["online"] and s["nodes"]["plant/gap"]["bdSeq"] == 4
        with writer(pg) as c:     # the good ones once each, none of the refused ones
            got = sorted(c.execute("SELECT metric FROM greenedge.metrics WHERE node = 'gap' "
                                   "AND device = '' AND time >= %s", (since,)).fetchall())
        assert got == [("bdSeq",), ("m/good0",), ("m/good1",), ("m/good2",), ("m/good3",)], got
        until(lambda: n_events(pg, "gap", "bad_metric", t0 / 1000) == 2
              and n_events(pg, "gap", "bad_payload", t0 / 1000) == 2, "no bad_* events")
        with writer(pg) as c:
            days = [r[0] for r in c.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'metrics'")]
        last = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).strftime("%Y%m%d")
        assert all(d[len("metrics_p"):] <= last for d in days), days   # no far-future day

        # the writer: rows the database refuses, for a day without a partition yet
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=5)
        rows = [(old + dt.timedelta(milliseconds=i), GROUP, "gap", "inj", "w/%d" % i,
                 float(i), None, None, False) for i in range(40)]
        rows[7] = rows[7][:6] + ("a\x00b",) + rows[7][7:]                 # NUL in a text
        rows[23] = rows[23][:4] + ("w/\x00",) + rows[23][5:]              # NUL in a name
        with host._lock:
            host._rows.extend(rows)
        until(lambda: host.status()["bad_rows"] == 2 and host.status()["queued"] == 0,
              "the refused rows never isolated: %s" % host.status())
        until(lambda: db_count(pg, "WHERE device = 'inj'") == 38, "the rest of the batch")
        pub.publish("spBv1.0/plant/NDATA/gap", NData(timestamp=t0 + 5, seq=4, metrics=(
            dbl("m/good4", 4.0, ts=t0 + 5),)))
        until(lambda: stored("m/good4") == 1, "a good value after the refused rows")
        until(lambda: n_events(pg, "", "bad_rows", t0 / 1000) == 1, "no bad_rows event")
        s = host.status()
    finally:
        pub.close()
        host.stop()
    assert s["db_errors"] == 0 and s["db_data_errors"] == 1 and s["bad_rows"] == 2, s
    assert s["inserted"] >= 38 + 5
