"""The edge's alarms as Sparkplug node metrics (controller/north/sparkplug.py):
Alarms/<id>/State, Alarms/<id>/Priority, Alarms/Active, on the service
polling a fake line, against the real mosquitto of tests/test_north_sparkplug.py
(TLS, passwords, ACL) with its paho primary host. An alarm raised on the
edge (its drive stops answering) arrives in NDATA as unacknowledged, stamped
with the engine's transition; acknowledging it through the command gate
changes the state metric; a rebirth's NBIRTH carries the state as it is."""

import asyncio
import shutil
import time

import pytest

from pysparkplug import DataType

from controller.config import load_config
from hil_tests.clock import ScaledClock
from hil_tests.fakeline import FakeBus, FakeDevice
from tests.async_wait import physics, until
from tests.test_north_sparkplug import Broker, Host, by_name
from tests.plant_toml import fan_plant

PLANT = fan_plant('north', 1, 500, tail="""
    [mqtt]
    broker = "mqtts://127.0.0.1:%(port)d"
    group_id = "plant"
    primary_host_id = "scada"
    username = "edge"
    password = "edge-secret"
    ca = "ca.pem"
""")
SPEEDUP = 6.0
ALARM = "fan1.down"
STATE = "Alarms/%s/State" % ALARM


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    try:
        yield b
    finally:
        b.stop()


def node_metrics(host, kinds=("NBIRTH", "NDATA")):
    """[(kind, metric)] of the node's messages in arrival order."""
    with host.lock:
        msgs = list(host.msgs)
    return [(t.split("/")[2], m) for t, p, _ in msgs if t.split("/")[2] in kinds
            and t.split("/")[3] == "north" for m in p.metrics]


def states(host, name=STATE):
    return [(k, m.string_value, m.timestamp) for k, m in node_metrics(host) if m.name == name]


def active(host):
    return [m.int_value for _, m in node_metrics(host) if m.name == "Alarms/Active"]


def test_alarms_as_node_metrics(broker, tmp_path):
    from controller.runtime.service import Service, build_lines
    shutil.copy(broker.tmp / "ca.pem", tmp_path / "ca.pem")
    (tmp_path / "plant.toml").write_text(PLANT % {"port": broker.port})
    cfg = load_config(tmp_path / "plant.toml")
    bus = FakeBus([FakeDevice("motor", 1)], latency_s=0.001)
    svc = Service(cfg, live=False, historian=False, clock=ScaledClock(SPEEDUP, time.time()),
                  lines=build_lines(cfg, None, client_factory=bus.client))
    trans = svc.hub.subscribe("test-alarms", ("alarm",))
    host = Host(broker)
    out = {}

    def last(name):
        got = [m for _, m in node_metrics(host) if m.name == name]
        return got[-1] if got else None

    async def run():
        task = asyncio.create_task(svc.run(300.0))
        ph = asyncio.create_task(physics([bus], SPEEDUP))
        try:
            await until(lambda: host.of("NBIRTH") and host.of("DBIRTH", "fan1"),
                        "no NBIRTH/DBIRTH")
            await until(lambda: svc.devices["fan1"].polls > 5, "fan1 never polled")
            await asyncio.sleep(1.0)
            out["active_before"] = last("Alarms/Active").int_value
            # the drive stops answering: fan1.down raises on the edge
            bus.devices[1].silent = True
            await until(lambda: any(s == "unacknowledged" for _, s, _ in states(host)),
                        "fan1.down never arrived unacknowledged")
            await asyncio.sleep(1.0)
            out["active_raised"] = last("Alarms/Active").int_value
            out["engine_raised"] = svc.alarms.summary()["active"]
            t = svc.gate.submit("test:op", "operator", "ack", None, alarm=ALARM)
            assert t.accepted, t.reason
            await until(lambda: states(host)[-1][1] == "acknowledged",
                        "the acknowledgement never reached the state metric")
            await asyncio.sleep(1.0)
            out["active_acked"] = last("Alarms/Active").int_value
            # a rebirth: the NBIRTH carries every alarm as it is now
            n0 = len(host.of("NBIRTH"))
            host.cmd(None, "Node Control/Rebirth", DataType.BOOLEAN, True)
            await until(lambda: len(host.of("NBIRTH")) > n0, "no rebirth")
            out["rebirth"] = by_name(host.of("NBIRTH")[-1][0])
            # back: acknowledged and cleared is normal, no longer active
            bus.devices[1].silent = False
            await until(lambda: states(host)[-1][1] == "normal", "fan1.down never cleared")
            await asyncio.sleep(1.0)
            out["active_cleared"] = last("Alarms/Active").int_value
            out["engine_cleared"] = svc.alarms.summary()["active"]
        finally:
            ph.cancel()
            svc.stop()
            await task
    try:
        asyncio.run(run())
    finally:
        host.close()

    # the first NBIRTH: every alarm of the config, its state and priority
    nb = by_name(host.of("NBIRTH")[0][0])
    defs = cfg.alarms.defs
    assert ALARM in defs and len(defs) > 3
    for aid, d in defs.items():
        assert nb["Alarms/%s/State" % aid].datatype == DataType.STRING
        assert nb["Alarms/%s/Priority" % aid].int_value == d.priority
    assert nb[STATE].string_value == "normal"
    assert nb["Alarms/%s/Priority" % ALARM].int_value == 2
    assert nb["Alarms/Active"].datatype == DataType.UINT32
    # each transition of fan1.down on the hub is one State sample stamped with
    # its wall time, in order: raised, acknowledged, cleared
    _, stream = trans.drain()
    recs = [(r["new"], int(r["wall"] * 1000)) for _, r in stream if r["id"] == ALARM]
    sent = [(s, ts) for kind, s, ts in states(host) if kind == "NDATA"]
    assert sent == recs
    assert [s for s, _ in sent] == ["unacknowledged", "acknowledged", "normal"]
    # Alarms/Active: up by one while it is unacknowledged or acknowledged, the
    # engine's own count, back down once it is normal
    assert out["active_raised"] == out["active_before"] + 1 == out["engine_raised"]
    assert out["active_acked"] == out["active_raised"]
    assert out["active_cleared"] == out["active_before"] == out["engine_cleared"]
    assert out["rebirth"][STATE].string_value == "acknowledged"
    assert out["rebirth"]["Alarms/Active"].int_value == out["active_acked"]
    # the other alarms of a down device are suppressed, and said so
    assert any(s == "suppressed" for _, s, _ in states(host, "Alarms/fan1.drive_fault/State"))
