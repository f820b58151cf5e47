"""The runtime as tables on the in-process fake line (hil_tests/fakeline.py):
inputs, a clock step, the writes the devices saw. No firmware processes; the
HIL tests run the real firmware. Each row is what a commissioning engineer
would check on a plant: what reaches the device, in which order, and what is
refused."""

import asyncio
import textwrap
import time

import pytest

from controller.config import load_config
from controller.fieldbus import master
from controller.runtime import cycle, image, protocol
from controller.runtime.service import Service, build_lines
from hil_tests.fakeline import FakeBus, FakeDevice

PLANT = textwrap.dedent("""
    [service]
    name = "fake"
    [lines.l1]
    kind = "rtu"
    port = "/dev/null"
    baud = 115200
    [devices.fan1]
    line = "l1"
    unit = 1
    profile = "motor"
    settings = { min_speed_pct = 25, speed_safe_pct = 30, comm_loss_timeout_s = 30 }
    [groups.process]
    period_ms = 1000
    [loops.fan]
    plant = "fan"
    group = "process"
    devices = { drive = "fan1" }
    process = { flow_sp_m3s = 30.0, flow_design_m3s = 50.0 }
    """)


class ManualClock:
    speedup = 1.0

    def __init__(self):
        self.t = 0.0

    def plant_s(self):
        return self.t


class SteppedTime:
    """time for the runtime's modules while a table runs: monotonic() is the
    table's clock (status polls every 0.5 s, arm retries every 1 s, staleness
    follow the steps, not the wall); everything else is the real time module."""

    def __init__(self, clock):
        self.clock = clock

    def monotonic(self):
        return 1000.0 + self.clock.t

    def __getattr__(self, name):
        return getattr(time, name)


STEPPED = [master, protocol, image, cycle]


class Rig:
    """The service on a fake line, stepped by hand: one step = the plant
    moves dt_s, every line does a round (writes, then a poll of every device),
    housekeeping sends settings, one cycle runs, the writes are delivered.
    PLANT's device has a 30 s comm-loss timeout: a step of 10 s is 10 s without
    a cycle, and so without a heartbeat (runtime/protocol.py)."""

    def __init__(self, tmp_path, text=PLANT, devices=None, historian=False):
        self.clock = ManualClock()
        self._saved = [(m, m.time) for m in STEPPED]
        for m in STEPPED:
            m.time = SteppedTime(self.clock)
        (tmp_path / "plant.toml").write_text(text)
        self.cfg = load_config(tmp_path / "plant.toml")
        self.bus = FakeBus(devices or [FakeDevice("motor", 1)])
        lines = build_lines(self.cfg, None, client_factory=self.bus.client)
        self.svc = Service(self.cfg, live=False, historian=historian, clock=self.clock, lines=lines)
        self.events = self.svc.hub.subscribe("test", ("event", "audit"))
        self.loop = asyncio.new_event_loop()
        for line in self.svc.lines.values():
            self.loop.run_until_complete(line.open())

    def step(self, dt_s=1.0, n=1):
        for _ in range(n):
            self.clock.t += dt_s
            self.bus.advance(dt_s)
            for line in self.svc.lines.values():
                self.loop.run_until_complete(line.round())
            for p in self.svc.protocols.values():
                p.send_settings()
            for g in self.svc.groups:
                self.svc.cycle.step(g, self.clock.t, 1000.0 + self.clock.t)
            for line in self.svc.lines.values():
                self.loop.run_until_complete(line.round())

    def drain(self, topic):
        _, stream = self.events.drain()
        return [item for t, item in stream if t == topic]

    def close(self):
        self.loop.close()
        for m, t in self._saved:
            m.time = t


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_device_gets_settings_then_commands_then_arm(rig):
    dev = rig.bus.devices[1]
    rig.step(n=3)
    names = [n for n, _ in dev.writes]
    arm = names.index("arm")
    # Settings and the loop's commands all land before arm, which comes once.
    assert {"speed_safe_pct", "min_speed_pct", "speed_ref_pct", "run_cmd"} <= set(names[:arm])
    assert names.count("arm") == 1 and dev.armed()
    assert rig.svc.loops["fan"].mode == "auto"
    assert dev.get("min_speed_pct") == 25 and dev.get("speed_safe_pct") == 30


def test_a_device_that_refuses_writes_is_never_armed(rig):
    dev = rig.bus.devices[1]
    dev.refuse = True
    rig.step(n=5)
    assert not dev.armed() and dev.writes == []
    refused = [e for e in rig.drain("event") if e["kind"] == "write_refused"]
    assert refused and "exception" in refused[0]["text"]
    assert rig.svc.protocols["fan1"].refused >= 2     # retried after ARM_RETRY_S, refused again
    assert rig.svc.status()["devices"]["fan1"]["writes_refused"] >= 2
    dev.refuse = False
    rig.step(n=3)
    assert dev.armed()                                 # it recovers once the device accepts


def test_a_device_at_the_wrong_unit_is_refused_and_never_driven(tmp_path):
    wrong = FakeDevice("motor", 1)
    wrong.set("profile_id", 3)  # an SCR controller answering at the fan's address
    r = Rig(tmp_path, devices=[wrong])
    r.step(n=4)
    assert wrong.writes == []
    ev = [e for e in r.drain("event") if e["kind"] == "identity_mismatch"]
    assert len(ev) == 1 and "profile scr" in ev[0]["text"]
    assert r.svc.loops["fan"].mode == "fallback"
    assert not r.svc.status()["devices"]["fan1"]["identity_ok"]
    r.close()


def test_comm_loss_trip_is_rearmed_with_fresh_settings(rig):
    dev = rig.bus.devices[1]
    rig.step(n=3)
    assert dev.armed()
    dev.silent = True
    rig.step(dt_s=4.0, n=9)            # no request reaches it for > its 30 s timeout
    assert not dev.armed()
    dev.writes.clear()
    dev.silent = False
    rig.step(n=6)                      # down -> up again: settings, commands, arm
    names = [n for n, _ in dev.writes]
    assert "arm" in names and dev.armed()
    assert {"speed_safe_pct", "min_speed_pct"} <= set(names[:names.index("arm")])


GATE = [
    # who, role, kind, args, accepted, reason contains
    ("hmi:ann", "viewer", "mode", {"mode": "manual"}, False, "role viewer may not"),
    ("hmi:bob", "operator", "mode", {"mode": "manual",
                                     "outputs": {"drive": {"speed_ref_pct": 140}}}, False, "outside"),
    ("hmi:bob", "operator", "mode", {"mode": "manual",
                                     "outputs": {"drive": {"speed_actual_pct": 40}}}, False,
     "not a writable"),
    ("hmi:bob", "operator", "mode", {"mode": "sideways"}, False, "not auto or manual"),
    ("hmi:bob", "operator", "param", {"name": "kp", "value": 5.0}, False, "needs engineer"),
    ("hmi:eve", "engineer", "param", {"name": "gain", "value": 5.0}, False, "not a parameter"),
    ("hmi:eve", "engineer", "param", {"name": "static_head", "value": 2.0}, False, "0.9"),
    ("hmi:bob", "operator", "setpoint", {"key": "flow_sp_m3s", "value": 80.0}, False, "outside"),
    ("hmi:bob", "operator", "setpoint", {"key": "flow_design_m3s", "value": 40.0}, False,
     "no set point"),
    ("hmi:bob", "operator", "mode", {"mode": "manual",
                                     "outputs": {"drive": {"speed_ref_pct": 40}}}, True, None),
    ("hmi:bob", "operator", "setpoint", {"key": "flow_sp_m3s", "value": 20.0}, True, None),
    ("hmi:eve", "engineer", "param", {"name": "kp", "value": 10.0}, True, None),
]


@pytest.mark.parametrize("who,role,kind,args,accepted,reason", GATE)
def test_command_gate_checks_role_and_range_and_audits(rig, who, role, kind, args, accepted,
                                                       reason):
    rig.step(n=3)
    t = rig.svc.gate.submit(who, role, kind, "fan", **args)
    assert t.accepted is accepted
    if reason:
        assert reason in t.reason
    assert t.done.is_set() is (not accepted)     # accepted: applied at the next cycle boundary
    rig.step()
    assert t.done.is_set()
    (rec,) = rig.drain("audit")
    assert rec["who"] == who and rec["accepted"] is accepted and rec["kind"] == kind
    if accepted:
        assert rec["new"] is not None and "old" in rec


def test_manual_output_reaches_the_device_and_auto_ramps_back(rig):
    dev = rig.bus.devices[1]
    rig.step(n=20)
    auto_ref = dev.get("speed_ref_pct")
    t = rig.svc.gate.submit("hmi:bob", "operator", "mode", "fan", mode="manual",
                            outputs={"drive": {"speed_ref_pct": 40.0}})
    assert t.accepted
    rig.step()
    assert dev.get("speed_ref_pct") == pytest.approx(40.0)
    assert rig.svc.loops["fan"].mode == "manual"
    rig.svc.gate.submit("hmi:bob", "operator", "mode", "fan", mode="auto")
    rig.step(dt_s=10.0)
    assert dev.get("speed_ref_pct") == pytest.approx(40.0)      # the ramp starts where manual was
    rig.step(dt_s=10.0, n=2)
    # The PI continues from the manual output (tracking, modes.py), not from
    # the old auto value: the flow is low, so it moves up from 40 %, by its
    # own action, well short of where it was before manual.
    assert 40.2 < dev.get("speed_ref_pct") < 40.0 + 0.5 * abs(auto_ref - 40.0)
    rig.step(dt_s=10.0, n=6)
    assert rig.svc.loops["fan"].transfer is None                # done within TRANSFER_S


def test_a_parameter_change_is_bumpless(rig):
    dev = rig.bus.devices[1]
    rig.step(n=30)
    before = dev.get("speed_ref_pct")
    assert rig.svc.gate.submit("eng", "engineer", "param", "fan", name="kp", value=5.0).accepted
    rig.step()
    assert rig.svc.loops["fan"].strategy.params["kp"] == 5.0
    assert abs(dev.get("speed_ref_pct") - before) < 1.0


def test_setpoint_change_moves_the_plant(tmp_path):
    stopped = FakeDevice("motor", 1)
    stopped.set("run_safe", 0)   # a train found stopped: the curve carries it from the start
    rig = Rig(tmp_path, devices=[stopped])
    dev = rig.bus.devices[1]
    rig.step(n=40)
    flow0 = dev.get("process_pv")
    rig.svc.gate.submit("hmi:bob", "operator", "setpoint", "fan", key="flow_sp_m3s", value=20.0)
    rig.step(n=60)
    assert flow0 == pytest.approx(30.0, abs=1.5)
    assert dev.get("process_pv") == pytest.approx(20.0, abs=1.0)
    rig.close()


def test_hub_slow_subscriber_is_bounded_and_counted(rig):
    sub = rig.svc.hub.subscribe("slow", ("device", "event"), maxlen=5)
    for _ in range(20):
        rig.step()
        rig.svc.event("note", "test", "x")
    state, stream = sub.drain()
    assert len(stream) == 5                    # bounded: the newest five events
    assert state[("device", "fan1")]["points"]["speed_actual_pct"][1] == 0  # quality good
    assert sub.dropped >= 15 + 19              # old events and superseded device states counted


def test_state_save_failure_is_reported_once_and_control_goes_on(rig, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    rig.svc.state_path = blocker / "state.json"      # every save fails (like a full disk)
    dev = rig.bus.devices[1]
    for _ in range(5):
        rig.step()
        rig.svc.save_state()
    assert dev.armed() and rig.svc.loops["fan"].runs >= 4
    failed = [e for e in rig.drain("event") if e["kind"] == "state_save_failed"]
    assert len(failed) == 1
    rig.svc.state_path = tmp_path / "state.json"
    rig.svc.save_state()
    assert rig.svc.state_path.exists()
    assert [e["kind"] for e in rig.drain("event")] == ["state_saved"]
