"""The Sparkplug B edge node (controller/north/sparkplug.py) on the service
polling a fake line (hil_tests/fakeline.py), against a real Debian mosquitto
started for this module on a free loopback port: TLS with a test CA made here,
a password file (mosquitto_passwd), an ACL. A paho client plays the primary
host application (STATE on spBv1.0/STATE/scada) and decodes every message with
the Sparkplug protobuf (pysparkplug's compiled sparkplug_b.proto).

Plant time runs 6x (the bench's ScaledClock), so the 60 s broker outage is
10 s of wall time."""

import asyncio
import datetime
import json
import shutil
import socket
import ssl
import subprocess
import textwrap
import threading
import time

import pytest

import paho.mqtt.client as mqtt          # the test extra installs it: missing, this file fails
from pysparkplug import DataType, NCmd, DCmd, Metric
from pysparkplug._protobuf import Payload   # the compiled sparkplug_b.proto (raw messages)

from controller.config import load_config
from hil_tests.clock import ScaledClock
from hil_tests.fakeline import FakeBus, FakeDevice
from tests.async_wait import physics, until
from tests.plant_toml import fan_plant

SPEEDUP = 6.0
OUTAGE_PLANT_S = 60.0
GROUP, NODE, HOST = "plant", "north", "scada"

PLANT = fan_plant('north', 2, 500, tail="""
    [mqtt]
    broker = "mqtts://127.0.0.1:%(port)d"
    group_id = "plant"
    primary_host_id = "scada"
    username = "edge"
    password = "edge-secret"
    ca = "ca.pem"
    writable = ["Loops/fan/Mode", "fan1/speed_ref_pct"]
    command_role = "operator"
    deadband = { power_kw = 0.5 }
""")


def need(cmd, package):
    path = shutil.which(cmd) or shutil.which(cmd, path="/usr/sbin:/usr/bin:/sbin")
    if path is None:
        pytest.fail("%s is missing: apt-get install %s (tools/test.sh does it as root)"
                    % (cmd, package))
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_ca(tmp):
    """A test CA and a broker certificate it signs (PEM), with cryptography."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "GreenEdge test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - day).not_valid_after(now + day)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - day).not_valid_after(now + day)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (tmp / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp / "server.pem").write_bytes(cert.public_bytes(pem))
    (tmp / "server.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


class Broker:
    """mosquitto -c FILE in the foreground with TLS (a test CA), a password
    file of users (name, secret) and an ACL; start() waits until it accepts TCP."""

    USERS = (("edge", "edge-secret"), ("ops", "ops-secret"), ("viewer", "viewer-secret"))
    ACL = """
        user edge
        topic readwrite spBv1.0/#
        user ops
        topic readwrite spBv1.0/#
        user viewer
        topic read spBv1.0/#
        """

    def __init__(self, tmp):
        self.exe = need("mosquitto", "mosquitto")
        pw = need("mosquitto_passwd", "mosquitto")
        self.tmp, self.port, self.proc = tmp, free_port(), None
        make_ca(tmp)
        for i, (user, secret) in enumerate(self.USERS):
            subprocess.run([pw, "-b"] + (["-c"] if i == 0 else []) +
                           [str(tmp / "passwd"), user, secret], check=True)
        (tmp / "acl").write_text(textwrap.dedent(self.ACL))
        (tmp / "mosquitto.conf").write_text(textwrap.dedent("""
            # as root, mosquitto would drop to user mosquitto, who cannot read pytest's
            # private temp dir; as anyone else this line is ignored
            user root
            per_listener_settings false
            allow_anonymous false
            password_file %(d)s/passwd
            acl_file %(d)s/acl
            persistence false
            log_dest file %(d)s/mosquitto.log
            log_type all
            listener %(port)d 127.0.0.1
            cafile %(d)s/ca.pem
            certfile %(d)s/server.pem
            keyfile %(d)s/server.key
            """ % {"d": tmp, "port": self.port}))

    def start(self):
        self.proc = subprocess.Popen([self.exe, "-c", str(self.tmp / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t_end = time.monotonic() + 20
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise AssertionError("mosquitto exited: %s" % self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto never listened on %d" % self.port)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    try:
        yield b
    finally:
        b.stop()


class Host:
    """The primary host application: STATE birth (retained, QoS 1) and will,
    subscribed to the group; every message kept as (topic, Payload, wall s)."""

    def __init__(self, broker, user="ops", pw="ops-secret", host_id=HOST, state=True):
        self.msgs, self.lock = [], threading.Lock()
        self.host_id, self.state = host_id, state
        self.c = mqtt.Client(client_id="test-%s-%s" % (user, time.time_ns()),
                             clean_session=True)
        self.c.username_pw_set(user, pw)
        self.c.tls_set_context(ssl.create_default_context(cafile=str(broker.tmp / "ca.pem")))
        self.c.reconnect_delay_set(0.2, 1.0)
        self.ts = int(time.time() * 1000)
        self.c.will_set("spBv1.0/STATE/%s" % host_id,
                        json.dumps({"online": False, "timestamp": self.ts}), 1, True)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.connected = threading.Event()
        self.c.connect("127.0.0.1", broker.port, 10)
        self.c.loop_start()
        assert self.connected.wait(20), "test host never connected"

    def _on_connect(self, c, u, flags, rc):
        assert rc == 0, mqtt.connack_string(rc)
        c.subscribe("spBv1.0/%s/#" % GROUP, 1)
        if self.state:
            self.online(wait=False)
        self.connected.set()

    def online(self, online=True, ts=None, wait=True):
        self.state = True
        if ts is not None:
            self.ts = ts
        info = self.c.publish("spBv1.0/STATE/%s" % self.host_id,
                              json.dumps({"online": online, "timestamp": self.ts}), 1, True)
        if wait:   # not inside paho's callbacks: its own thread delivers the PUBACK
            info.wait_for_publish(10)

    def _on_message(self, c, u, m):
        with self.lock:
            self.msgs.append((m.topic, Payload.FromString(m.payload), time.time()))

    def of(self, kind, device=None):
        t = "spBv1.0/%s/%s/%s" % (GROUP, kind, NODE) + ("/" + device if device else "")
        with self.lock:
            return [(p, w) for topic, p, w in self.msgs if topic == t]

    def since(self, n):
        with self.lock:
            return list(self.msgs[n:])

    def count(self):
        with self.lock:
            return len(self.msgs)

    def cmd(self, device, name, datatype, value):
        m = Metric(timestamp=int(time.time() * 1000), name=name, datatype=datatype, value=value)
        if device is None:
            raw = NCmd(timestamp=int(time.time() * 1000), metrics=(m,)).encode(include_dtypes=True)
            t = "spBv1.0/%s/NCMD/%s" % (GROUP, NODE)
        else:
            raw = DCmd(timestamp=int(time.time() * 1000), metrics=(m,)).encode(include_dtypes=True)
            t = "spBv1.0/%s/DCMD/%s/%s" % (GROUP, NODE, device)
        self.c.publish(t, raw, 1).wait_for_publish(10)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def props(metric):
    return dict(zip(metric.properties.keys,
                    [v.string_value if v.type == DataType.STRING else v.int_value
                     for v in metric.properties.values]))


def by_name(payload):
    return {m.name: m for m in payload.metrics}


def test_sparkplug_edge_node_against_mosquitto(broker, tmp_path):
    from controller.runtime.service import Service, build_lines
    shutil.copy(broker.tmp / "ca.pem", tmp_path / "ca.pem")
    (tmp_path / "plant.toml").write_text(PLANT % {"port": broker.port})
    cfg = load_config(tmp_path / "plant.toml")
    bus = FakeBus([FakeDevice("motor", 1)], latency_s=0.001)       # fan2 never answers
    clock = ScaledClock(SPEEDUP, time.time())
    svc = Service(cfg, live=False, historian=False, clock=clock,
                  lines=build_lines(cfg, None, client_factory=bus.client))
    audit = svc.hub.subscribe("test-audit", ("audit",))
    events = svc.hub.subscribe("test-events", ("event",))
    host = Host(broker, state=False)     # connected, STATE not yet online
    viewer = Host(broker, "viewer", "viewer-secret", host_id="viewer", state=False)
    out = {}

    async def run():
        task = asyncio.create_task(svc.run(300.0))
        ph = asyncio.create_task(physics([bus], SPEEDUP))
        try:
            await until(lambda: svc.north, "the edge node never started")
            node = svc.north[0]
            await until(lambda: node.connected, "the edge node never connected (TLS, password)")
            await until(lambda: svc.devices["fan1"].polls > 5, "fan1 never polled")
            await asyncio.sleep(1.0)
            out["births_before_state"] = len(host.of("NBIRTH"))
            host.online()
            await until(lambda: host.of("DBIRTH", "fan1"), "no NBIRTH/DBIRTH after STATE online")
            await until(lambda: len(host.of("DDATA", "fan1")) >= 5, "no DDATA")
            # rebirth on NCMD
            n0 = len(host.of("NBIRTH"))
            host.cmd(None, "Node Control/Rebirth", DataType.BOOLEAN, True)
            await until(lambda: len(host.of("NBIRTH")) > n0 and len(host.of("DBIRTH", "fan1")) > 1,
                        "no rebirth after NCMD Node Control/Rebirth")
            # commands: a viewer's DCMD (the broker's ACL drops it), a metric not
            # writable, the operator's accepted one
            viewer.cmd("fan1", "speed_ref_pct", DataType.DOUBLE, 20.0)
            host.cmd("fan1", "ramp_up_pct_s", DataType.DOUBLE, 5.0)
            await until(lambda: node.commands["refused"] >= 1, "non-writable DCMD not refused")
            await asyncio.sleep(1.0)
            out["manual_after_refused"] = svc.loops["fan"].manual
            host.cmd("fan1", "speed_ref_pct", DataType.DOUBLE, 40.0)
            await until(lambda: svc.loops["fan"].manual is not None, "DCMD never applied")
            out["manual"] = svc.loops["fan"].manual
            out["commands"] = dict(node.commands)
            # DDEATH when the field device goes down, DBIRTH when it is back
            nb = len(host.of("DBIRTH", "fan1"))
            bus.devices[1].silent = True
            await until(lambda: host.of("DDEATH", "fan1"), "no DDEATH for a silent fan1")
            bus.devices[1].silent = False
            await until(lambda: len(host.of("DBIRTH", "fan1")) > nb, "no DBIRTH when fan1 is back")
            await asyncio.sleep(1.0)
            # the link drops without a DISCONNECT (as when the edge PC dies): the
            # broker sends the will, NDEATH with the session's bdSeq; the node
            # starts a new session with bdSeq + 1
            nd0 = len(host.of("NDEATH"))
            node._client.socket().shutdown(socket.SHUT_RDWR)
            await until(lambda: len(host.of("NDEATH")) > nd0, "no will NDEATH from the broker")
            await until(lambda: node.live and node.bd_seq == 1 and node.buffer.rows == 0,
                        "no new session after the link dropped")
            out["will"] = host.of("NDEATH")[-1][0]
            await asyncio.sleep(1.0)
            # the primary host says it is offline: NDEATH, a new connection that
            # waits; an older STATE online is ignored, a current one brings NBIRTH
            nd0, nb0 = len(host.of("NDEATH")), len(host.of("NBIRTH"))
            t_old = host.ts
            host.online(False, int(time.time() * 1000))
            await until(lambda: len(host.of("NDEATH")) > nd0, "no NDEATH on STATE offline")
            await until(lambda: node.connected and node.bd_seq == 2, "no reconnect after it")
            host.online(True, t_old)
            await asyncio.sleep(1.5)
            out["births_on_old_state"] = len(host.of("NBIRTH")) - nb0
            host.online(True, int(time.time() * 1000))
            await until(lambda: len(host.of("NBIRTH")) > nb0 and node.buffer.rows == 0,
                        "no NBIRTH once the host is back online")
            out["host_ndeath"] = host.of("NDEATH")[-1][0]
            await asyncio.sleep(1.0)
            # store-and-forward: 60 s of plant time without the broker
            before = host.count()
            stored0 = node.buffer.stored
            t_stop = time.time()
            broker.stop()
            await asyncio.sleep(OUTAGE_PLANT_S / SPEEDUP)
            out["rows_in_outage"] = node.buffer.rows
            out["stored"] = node.buffer.stored - stored0
            t_restart = time.time()
            broker.start()
            await until(lambda: node.live and node.buffer.rows == 0 and not node._inflight,
                        "the buffer was never forwarded", 60.0)
            await asyncio.sleep(1.0)
            out["stored_total"] = node.buffer.stored - stored0   # outage + until the backlog
            out.update(t_stop=t_stop, t_restart=t_restart, before=before,
                       dropped=node.buffer.dropped, unsent=node.unsent, bdseq=node.bd_seq)
        finally:
            ph.cancel()
            svc.stop()
            await task
        await asyncio.sleep(0.5)
    try:
        asyncio.run(run())
        time.sleep(0.5)
        msgs = host.since(0)
    finally:
        host.close()
        viewer.close()

    assert out["births_before_state"] == 0      # NBIRTH waits for the primary host
    nbirths = host.of("NBIRTH")
    nb0, _ = nbirths[0]
    m = by_name(nb0)
    assert nb0.seq == 0 and m["bdSeq"].datatype == DataType.INT64 and m["bdSeq"].long_value == 0
    assert m["Node Control/Rebirth"].datatype == DataType.BOOLEAN
    assert m["Loops/fan/Mode"].datatype == DataType.STRING
    assert m["Loops/fan/Mode"].string_value == "auto"
    assert m["Loops/fan/SP/flow_sp_m3s"].double_value == 30.0
    db, _ = host.of("DBIRTH", "fan1")[0]
    d = by_name(db)
    assert db.seq == 1
    assert d["power_kw"].datatype == DataType.DOUBLE and props(d["power_kw"])["engUnit"] == "kW"
    assert props(d["power_kw"])["Quality"] == 192
    assert d["uptime_s"].datatype == DataType.UINT32
    assert d["process_pv"].datatype == DataType.FLOAT
    assert d["running"].datatype == DataType.BOOLEAN
    assert d["speed_actual_pct"].datatype == DataType.DOUBLE
    assert props(d["speed_actual_pct"])["engUnit"] == "%"
    assert not host.of("DBIRTH", "fan2")                   # never up: never born
    # seq: +1 mod 256 per message of the node from each NBIRTH (0) on
    seqs, expect = [], None
    for topic, p, _ in msgs:
        kind = topic.split("/")[2]
        if topic.split("/")[3] != NODE or kind in ("NCMD", "DCMD", "NDEATH"):
            continue
        if kind == "NBIRTH":
            expect = 0
        assert p.seq == expect, (topic, p.seq, expect)
        seqs.append(p.seq)
        expect = (expect + 1) % 256
    assert len(seqs) > 50
    for topic, p, _ in msgs:     # 3.0: DATA metrics in chronological order
        if "DATA" in topic:
            ts = [mt.timestamp for mt in p.metrics]
            assert ts == sorted(ts), topic
    # rebirth: same bdSeq, seq 0
    assert by_name(nbirths[1][0])["bdSeq"].long_value == 0 and nbirths[1][0].seq == 0
    # commands: the viewer's never reached the gate; the operator's did, audited
    assert out["manual_after_refused"] is None
    assert out["manual"] == {"drive": {"speed_ref_pct": 40.0}}
    assert out["commands"] == {"accepted": 1, "refused": 1}
    _, stream = audit.drain()
    recs = [(r["who"], r["role"], r["kind"], r["accepted"]) for _, r in stream]
    assert recs == [("mqtt:scada", "operator", "mode", True)]
    assert "Denied PUBLISH" in (broker.tmp / "mosquitto.log").read_text()
    _, stream = events.drain()
    kinds = [r["kind"] for _, r in stream if r["source"] == "sparkplug"]
    assert kinds.count("mqtt_command_refused") == 1 and "mqtt_failed" not in kinds
    assert {"mqtt_lost", "mqtt_host_offline", "mqtt_connect_failed"} <= set(kinds)
    # DDATA: values with the poll's timestamp, report by exception (deadband)
    last, steps = None, []      # power_kw against the last value sent (DBIRTH or DDATA)
    for topic, p, _ in msgs:
        if not topic.endswith("/" + NODE + "/fan1"):
            continue
        for mt in p.metrics:
            if mt.name != "power_kw" or mt.is_historical:
                continue
            now = (mt.double_value, props(mt)["Quality"])
            if "/DDATA/" in topic and last is not None and now[1] == last[1]:
                steps.append(abs(now[0] - last[0]))
            last = now
    assert len(steps) >= 2 and min(steps) > 0.5
    # store-and-forward: after the outage, a new session (bdSeq 1), then every
    # buffered value once, in order, with its own timestamp, marked historical
    assert out["stored"] > 100 and out["rows_in_outage"] == out["stored"]
    assert out["stored_total"] >= out["stored"]
    assert out["dropped"] == 0 and out["unsent"] == 0
    after = msgs[out["before"]:]
    nb = [p for t, p, _ in after if t.endswith("/NBIRTH/" + NODE)]
    assert by_name(out["will"])["bdSeq"].long_value == 0           # the first session's
    assert by_name(out["will"])["bdSeq"].datatype == DataType.INT64
    assert out["births_on_old_state"] == 0
    assert by_name(out["host_ndeath"])["bdSeq"].long_value == 1
    assert [by_name(p)["bdSeq"].long_value for p, _ in nbirths] == [0, 0, 1, 2, 3]
    assert nb and by_name(nb[0])["bdSeq"].long_value == 3 == out["bdseq"]
    hist = [(t.split("/")[-1], mt.name, mt.timestamp) for t, p, _ in after
            for mt in p.metrics if mt.is_historical]
    assert len(hist) == out["stored_total"]
    assert len(set(hist)) == len(hist)                              # none twice
    live = {(t.split("/")[-1], mt.name, mt.timestamp) for t, p, _ in msgs
            for mt in p.metrics if not mt.is_historical and "DATA" in t}
    assert not live & set(hist)                                    # none sent live too
    pv = [ts for dev, name, ts in hist if (dev, name) == ("fan1", "process_pv")]
    assert pv == sorted(pv)                                        # in order
    assert pv[0] / 1000 <= out["t_stop"] + 3.0 and pv[-1] / 1000 >= out["t_restart"] - 3.0
    assert max(b - a for a, b in zip(pv, pv[1:])) < 3000           # no hole in the trend
    # a clean stop: NDEATH with the bdSeq of the session's NBIRTH
    nd = host.of("NDEATH")
    assert nd and by_name(nd[-1][0])["bdSeq"].long_value == 3


def test_mqtt_config_errors(tmp_path):
    from controller.errors import UserError
    (tmp_path / "a.toml").write_text(PLANT.replace("mqtts://127.0.0.1:%(port)d",
                                                   "mqtt://192.0.2.1:1883"))
    with pytest.raises(UserError, match="only to a loopback"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "b.toml").write_text(PLANT.replace("%(port)d", "8883").replace(
        'command_role = "operator"', 'command_role = "admin"'))
    with pytest.raises(UserError, match="command_role"):
        load_config(tmp_path / "b.toml")
    from controller.north.sparkplug import SparkplugNode
    from controller.runtime.hub import Hub
    (tmp_path / "c.toml").write_text(PLANT % {"port": 8883})   # ca.pem does not exist here
    cfg = load_config(tmp_path / "c.toml")
    with pytest.raises(UserError, match="cannot load ca"):
        SparkplugNode(cfg, cfg.north["mqtt"], Hub(), None)
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(UserError, match="cannot load ca"):
        SparkplugNode(cfg, cfg.north["mqtt"], Hub(), None)
    mq = dict(cfg.north["mqtt"], writable=("fan1/power_kw",))
    with pytest.raises(UserError, match="not a writable output"):
        SparkplugNode(cfg, mq, Hub(), None)
    mq = dict(cfg.north["mqtt"], writable=("Loops/fan/Speed",))
    with pytest.raises(UserError, match="no such metric"):
        SparkplugNode(cfg, mq, Hub(), None)


def test_buffer_beyond_capacity_drops_oldest_counted(tmp_path):
    """Past buffer_max rows the oldest go, counted; the rest stay in order."""
    from controller.north.sparkplug_data import Buffer
    b = Buffer(tmp_path / "b.sqlite", 100)
    b.put([("fan1", "power_kw", 10, float(i), 192, 1000 + i) for i in range(60)])
    b.put([("fan1", "power_kw", 10, float(i), 192, 1000 + i) for i in range(60, 150)])
    assert (b.rows, b.stored, b.dropped) == (100, 150, 50)
    head = b.head(200)
    assert [r[4] for r in head] == [float(i) for i in range(50, 150)]
    b.delete_upto(head[9][0])
    assert b.rows == 90 and b.head(1)[0][4] == 60.0
    b.close()
    again = Buffer(tmp_path / "b.sqlite", 100)     # on disk: a restart keeps the backlog
    assert again.rows == 90 and again.head(1)[0][4] == 60.0
    again.close()


def test_wrong_password_never_goes_live(broker, tmp_path):
    """The broker refuses the login: no session, no births, values buffered."""
    from controller.runtime.service import Service, build_lines
    shutil.copy(broker.tmp / "ca.pem", tmp_path / "ca.pem")
    text = (PLANT % {"port": broker.port}).replace('"edge-secret"', '"wrong-secret"')
    (tmp_path / "plant.toml").write_text(text.replace('primary_host_id = "scada"\n', ""))
    cfg = load_config(tmp_path / "plant.toml")
    bus = FakeBus([FakeDevice("motor", 1)], latency_s=0.001)
    svc = Service(cfg, live=False, historian=False,
                  lines=build_lines(cfg, None, client_factory=bus.client))
    events = svc.hub.subscribe("test-events", ("event",))
    host = Host(broker, state=False)
    got = {}

    async def run():
        task = asyncio.create_task(svc.run(60.0))
        try:
            t_end = time.monotonic() + 30
            while time.monotonic() < t_end and not (svc.north and svc.north[0].buffer.rows > 20):
                await asyncio.sleep(0.1)
            node = svc.north[0]
            got.update(live=node.live, rows=node.buffer.rows)
        finally:
            svc.stop()
            await task
    try:
        asyncio.run(run())
    finally:
        host.close()
    _, stream = events.drain()
    kinds = [r["kind"] for _, r in stream if r["source"] == "sparkplug"]
    assert "mqtt_refused" in kinds and "mqtt_birth" not in kinds and "mqtt_failed" not in kinds
    assert not got["live"] and got["rows"] > 20
    assert not host.of("NBIRTH")


def test_run_mqtt_option(tmp_path):
    """`greenedge run --mqtt URL`: over [mqtt] (broker replaced), or defaults
    (command role viewer: every command refused) when the config has none."""
    import argparse
    from controller.cli.service_cmds import _north_options
    from controller.errors import UserError
    (tmp_path / "p.toml").write_text(PLANT % {"port": 8883})
    cfg = load_config(tmp_path / "p.toml")
    _north_options(cfg, argparse.Namespace(mqtt="mqtts://127.0.0.1:9999", config="p.toml"))
    mq = cfg.north["mqtt"]
    assert mq["broker"] == "mqtts://127.0.0.1:9999" and mq["command_role"] == "operator"
    assert mq["ca"] == tmp_path / "ca.pem"
    (tmp_path / "q.toml").write_text(PLANT.split("[mqtt]")[0])
    cfg = load_config(tmp_path / "q.toml")
    _north_options(cfg, argparse.Namespace(mqtt="mqtt://localhost:1883", config="q.toml"))
    mq = cfg.north["mqtt"]
    assert (mq["command_role"], mq["writable"], mq["node_id"], mq["group_id"]) == (
        "viewer", (), "north", "greenedge")
    with pytest.raises(UserError, match="only to a loopback"):
        _north_options(cfg, argparse.Namespace(mqtt="mqtt://192.0.2.7:1883", config="q.toml"))
