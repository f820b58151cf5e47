"""`greenedge demo --opcua ... --mqtt ... --metrics ...`: the demo's service (the
real firmware on the MicroPython unix port behind a virtual RS-485 line, real
Modbus RTU, the fan plant at 60x) with its northbound interfaces, each read by
the real counterpart while the demo runs: asyncua's client over
Basic256Sha256 SignAndEncrypt (an operator from --hmi-users, whose switch to
manual shows on the Mode node and on /metrics), a plain HTTP
scrape of /metrics parsed by prometheus-client's parser, and a Debian
mosquitto on a free loopback port (plain mqtt://, loopback only, anonymous)
with a paho subscriber decoding the Sparkplug B payloads. What each asserts is
what the user of that tool sees: values that change while the plant runs.
The demo is started as a user starts it and stopped (SIGINT to its process
group) in the fixture's teardown, with the broker."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request

import pytest

import paho.mqtt.client as mqtt          # the test extra installs these: missing, this fails
from asyncua import Client, ua
from prometheus_client.parser import text_string_to_metric_families
from pysparkplug._protobuf import Payload

from controller.north.certs import make_cert
from controller.north.users import add_user
from tests.test_north_sparkplug import Broker, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS = "urn:greenedge:hil-bench"


class PlainBroker(Broker):
    """mosquitto on a loopback port without TLS or passwords (what demo --mqtt
    mqtt://127.0.0.1:PORT talks to); start() and stop() are Broker's."""

    def __init__(self, tmp):
        super().__init__(tmp)     # checks the package, finds a free port
        (tmp / "mosquitto.conf").write_text(textwrap.dedent("""
            user root
            allow_anonymous true
            persistence false
            log_dest file %(d)s/mosquitto.log
            listener %(port)d 127.0.0.1
            """ % {"d": tmp, "port": self.port}))


class Subscriber:
    """Every Sparkplug message of the demo's edge node: (topic, Payload)."""

    def __init__(self, port):
        self.msgs, self.lock = [], threading.Lock()
        self.ready = threading.Event()
        self.c = mqtt.Client(client_id="test-demo-%d" % time.time_ns())
        self.c.on_connect = lambda c, u, f, rc: (c.subscribe("spBv1.0/#", 1), self.ready.set())
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, 10)
        self.c.loop_start()
        assert self.ready.wait(20), "test subscriber never connected to mosquitto"

    def _on_message(self, c, u, m):
        if m.topic.startswith("spBv1.0/STATE"):
            return
        with self.lock:
            self.msgs.append((m.topic, Payload.FromString(m.payload)))

    def of(self, kind):
        with self.lock:
            return [(t, p) for t, p in self.msgs if "/%s/" % kind in t]

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class Demo:
    def __init__(self, tmp, mqtt_port):
        self.tmp = tmp
        self.opc_port, self.metrics_port = free_port(), free_port()
        add_user(tmp / "users.toml", "olga", "operator", "operator-pw")
        make_cert(tmp / "client.der", tmp / "client.pem", "urn:greenedge:testclient",
                  hosts=["127.0.0.1"], common_name="test client")
        self.opc_url = "opc.tcp://127.0.0.1:%d" % self.opc_port
        self.metrics_url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        self.err = open(tmp / "demo.err", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "demo", "--plants", "fan", "--minutes", "4",
             "--opcua", self.opc_url, "--mqtt", "mqtt://127.0.0.1:%d" % mqtt_port,
             "--metrics", "127.0.0.1:%d" % self.metrics_port,
             "--hmi-users", str(tmp / "users.toml"), "--report", str(tmp / "report")],
            stdout=subprocess.DEVNULL, stderr=self.err, start_new_session=True, cwd=ROOT)

    def log(self):
        self.err.seek(0)
        return self.err.read()[-3000:]

    def alive(self):
        assert self.proc.poll() is None, "demo exited: %s" % self.log()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)   # the demo's own group: bench, devices
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.err.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("northdemo")
    broker = PlainBroker(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    sub = d = None
    try:
        sub = Subscriber(broker.port)
        d = Demo(tmp, broker.port)
        d.sub = sub
        yield d
    finally:
        if d is not None:
            d.stop()
        if sub is not None:
            sub.close()
        broker.stop()


def wait(cond, what, demo, timeout_s=120.0):
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        v = cond()
        if v:
            return v
        demo.alive()
        time.sleep(0.5)
    raise AssertionError("%s (%g s): %s" % (what, timeout_s, demo.log()))


def scrape(demo):
    try:
        with urllib.request.urlopen(demo.metrics_url, timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return None
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_demo_serves_opcua_sparkplug_and_metrics(demo):
    # Prometheus: the fan drive's energy counter grows between two scrapes
    key = ("greenedge_energy_joules_total", (("device", "fan"),))
    up = ("greenedge_device_up", (("device", "fan"),))
    auto = ("greenedge_loop_mode", (("loop", "fan"), ("mode", "auto")))
    m1 = wait(lambda: (lambda m: m if m and m.get(key, 0) > 0 and m.get(up) == 1
                       and m.get(auto) == 1 else None)(scrape(demo)),
              "no greenedge_energy_joules_total{device=fan} > 0 with the fan up and its "
              "loop in auto on /metrics", demo)
    assert m1[("greenedge_cycle_duration_seconds_count", (("group", "process"),))] > 0
    wait(lambda: (scrape(demo) or {}).get(key, 0) > m1[key],
         "the energy counter on /metrics never grew", demo)

    # OPC UA: an operator over Basic256Sha256 SignAndEncrypt; the fan's values change
    got = {}

    async def opc():
        c = Client(demo.opc_url, timeout=20)
        c.application_uri = "urn:greenedge:testclient"
        c.set_user("olga")
        c.set_password("operator-pw")
        await c.set_security_string("Basic256Sha256,SignAndEncrypt,%s,%s"
                                    % (demo.tmp / "client.der", demo.tmp / "client.pem"))
        async with c:
            ns = await c.get_namespace_index(NS)
            energy = c.get_node(ua.NodeId("GreenEdge.Energy.fan", ns))
            power = c.get_node(ua.NodeId("GreenEdge.fan.fan.power_kw", ns))
            got["unit"] = (await (await power.get_child("0:EngineeringUnits")).read_value())
            seen = []

            class H:
                def datachange_notification(self, node, val, data):
                    seen.append((val, data.monitored_item.Value.StatusCode))
            sub = await c.create_subscription(200, H())
            await sub.subscribe_data_change(power)
            loop = asyncio.get_running_loop()
            t_end = loop.time() + 120
            while len({v for v, s in seen if s.is_good()}) < 3 and loop.time() < t_end:
                demo.alive()
                await asyncio.sleep(0.5)
            got["power"] = list(seen)
            got["e1"] = await energy.read_data_value(raise_on_bad_status=False)
            t_end = loop.time() + 120
            while loop.time() < t_end:
                e2 = await energy.read_data_value(raise_on_bad_status=False)
                if e2.StatusCode.is_good() and e2.Value.Value != got["e1"].Value.Value:
                    break
                await asyncio.sleep(0.5)
            got["e2"] = e2
            await sub.delete()
            # the operator puts the loop in manual over OPC UA: the demo's service
            # reports it (the Mode node, and Prometheus' greenedge_loop_mode)
            mode = c.get_node(ua.NodeId("GreenEdge.Loops.fan.Mode", ns))
            await mode.write_value(ua.DataValue(ua.Variant("manual", ua.VariantType.String)))
            t_end = loop.time() + 60
            while await mode.read_value() != "manual" and loop.time() < t_end:
                demo.alive()
                await asyncio.sleep(0.5)
            got["mode"] = await mode.read_value()
            got["metrics_manual"] = await asyncio.to_thread(
                wait, lambda: (scrape(demo) or {}).get(
                    ("greenedge_loop_mode", (("loop", "fan"), ("mode", "manual")))) == 1,
                "greenedge_loop_mode{mode=manual} never 1", demo, 60.0)
            await mode.write_value(ua.DataValue(ua.Variant("auto", ua.VariantType.String)))
    asyncio.run(opc())
    assert got["mode"] == "manual" and got["metrics_manual"]
    assert got["unit"].DisplayName.Text == "kW"
    assert len({v for v, s in got["power"] if s.is_good()}) >= 3, got["power"][-5:]
    assert got["e2"].StatusCode.is_good() and got["e2"].Value.Value > got["e1"].Value.Value

    # Sparkplug B: NBIRTH and DBIRTH of the demo's node, DDATA with changing values
    sub = demo.sub
    wait(lambda: sub.of("NBIRTH") and sub.of("DBIRTH"), "no NBIRTH / DBIRTH", demo)
    topics = {t for t, _ in sub.of("DBIRTH")}
    assert "spBv1.0/greenedge/DBIRTH/hil-bench/fan" in topics, topics

    def ddata_values():
        vals = {}
        for t, p in sub.of("DDATA"):
            if not t.endswith("/hil-bench/fan"):
                continue
            for mt in p.metrics:
                which = mt.WhichOneof("value")
                if which in ("double_value", "float_value"):
                    vals.setdefault(mt.alias or mt.name, set()).add(getattr(mt, which))
        return vals
    vals = wait(lambda: (lambda v: v if any(len(s) >= 3 for s in v.values()) else None)(
        ddata_values()), "no fan metric took 3 values in DDATA", demo)
    assert any(len(s) >= 3 for s in vals.values())
    demo.alive()
