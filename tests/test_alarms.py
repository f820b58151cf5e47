"""The alarm engine (controller/alarms) on the hub with a stepped clock: each
ISA-18.2 state transition, deadband and delays, shelving and its expiry,
suppression by design, the flood case (a device down raises one alarm), the
alarm-rate alarm, the command gate's roles, the historian's rows, the config's
errors, and `greenedge alarms --json` on the historian of a service run on the
fake line. What each test asserts is what an operator would see in the list."""

import asyncio
import json
import sqlite3
import textwrap

import pytest

from controller.alarms.engine import (ACKED, NORMAL, RTNUN, SHELVED, SUPPRESSED, UNACK,
                                      AlarmEngine, AlarmRecorder)
from controller.cli import main
from controller.config import ConfigError, load_config
from controller.historian import Historian
from controller.runtime.gate import CommandGate
from controller.runtime.hub import Hub
from controller.runtime.modes import LoopRunner
from firmware import regmap

PLANT = textwrap.dedent("""
    [service]
    name = "alarms"
    stale_s = 3.0
    [lines.l1]
    kind = "rtu"
    port = "/dev/null"
    [devices.fan1]
    line = "l1"
    unit = 1
    profile = "motor"
    [devices.scr1]
    line = "l1"
    unit = 3
    profile = "scr"
    settings = { min_catalyst_temp_c = 300 }
    [groups.process]
    period_ms = 1000
    [loops.fan]
    plant = "fan"
    group = "process"
    devices = { drive = "fan1" }
    process = { flow_sp_m3s = 30.0, flow_design_m3s = 50.0 }
    [accounting]
    nox_limit_mg_nm3 = 50
    nox_point = "scr1.nox_out_mg_nm3"
    """)

LIMIT = textwrap.dedent("""
    [[alarms]]
    id = "fan1.flow_hi"
    kind = "limit"
    point = "fan1.process_pv"
    hi = 40.0
    deadband = 2.0
    on_delay_s = 10
    off_delay_s = 5
    priority = 2
    text = "fan flow high"
    """)

W0 = 1.7e9   # the stepped wall clock's origin


class Clock:
    speedup = 1.0

    def __init__(self):
        self.t = 3600.0 * 1000   # plant time on a clock-hour boundary

    def plant_s(self):
        return self.t


class Plant:
    """An engine on a hub with a stepped plant clock (and a wall clock that
    steps with it); publish() puts a healthy plant on the hub, set() changes a
    point, step() moves time and runs one engine pass."""

    def __init__(self, tmp_path, extra=LIMIT, text=PLANT, hist=None):
        (tmp_path / "plant.toml").write_text(text + extra)
        self.cfg = load_config(tmp_path / "plant.toml")
        self.clock = Clock()
        self.t0 = self.clock.t
        self.hub = Hub()
        self.loops = {n: LoopRunner(lc) for n, lc in self.cfg.loops.items()}
        self.gate = CommandGate(self.cfg, self.loops, self.hub, self.clock)
        self.engine = AlarmEngine(self.cfg, self.hub, self.gate, self.clock, wall=self.wall)
        self.recorder = AlarmRecorder(self.hub, hist, self.engine) if hist else None
        self.sub = self.hub.subscribe("test", ("alarm", "audit"))
        self.up = {"fan1": True, "scr1": True}
        self.points = {
            "fan1": {"status": regmap.ST_ARMED, "interlocks": 0, "comm_loss_trips": 0,
                     "process_pv": 30.0, "drive_fault": 0.0},
            "scr1": {"status": regmap.ST_ARMED, "interlocks": 0, "comm_loss_trips": 0,
                     "nox_out_mg_nm3": 30.0, "nox_in_mg_nm3": 400.0, "o2_pct": 6.0,
                     "flue_gas_temp_c": 340.0, "flue_gas_flow_nm3h": 5e5, "nh3_slip_ppm": 1.0,
                     "dosing_blocked": 0.0,
                     "analyzer_fault": 0.0},
        }
        self.quality = {}
        self.t_src = {}
        self.loop = {"fan": {"mode": "auto", "manual": False, "errors": 0}}
        self.kpis = {"nox_hours": 0, "nox_exceed_hours": 0, "nox_open_mean_mg_nm3": 30.0,
                     "nox_open_valid_s": 0.0}
        self.historian = {"error": None, "dropped_rows": 0, "db_mb": 1.0, "queued_rows": 0}
        self.overruns = 0
        self.n = 0

    def wall(self):
        return W0 + self.clock.t - self.t0

    def set(self, dev, **points):
        self.points[dev].update(points)

    def publish(self):
        self.n += 1
        w = self.wall()
        for dn, pts in self.points.items():
            out = {}
            for p, v in pts.items():
                # transmitters move a little (a reading that never moves is stuck)
                jitter = 1e-4 * (self.n % 2) if p in ("process_pv", "nox_out_mg_nm3",
                                                      "o2_pct") else 0.0
                out[p] = (float(v) + jitter, self.quality.get((dn, p), regmap.Q_GOOD),
                          self.t_src.get((dn, p), w))
            self.hub.publish("device", dn, {"up": self.up[dn], "points": out if self.up[dn]
                                            else {}})
        for ln, lv in self.loop.items():
            self.hub.publish("loop", ln, dict(lv, t_s=lv.get("t_s", self.clock.t)))
        self.hub.publish("kpi", "kpis", dict(self.kpis))
        self.hub.publish("status", "service", {
            "devices": {dn: {"identity_ok": True} for dn in self.points},
            "groups": {"process": {"overruns": self.overruns}},
            "historian": dict(self.historian)})

    def step(self, dt=1.0, n=1):
        out = []
        for _ in range(n):
            self.clock.t += dt
            self.publish()
            self.engine.pump()
            if self.recorder:
                self.recorder.pump()
            out += self.drain()
        return out

    def drain(self):
        _, stream = self.sub.drain()
        self._audit = getattr(self, "_audit", []) + [i for t, i in stream if t == "audit"]
        return [i for t, i in stream if t == "alarm"]

    def audits(self):
        self.drain()
        a, self._audit = self._audit, []
        return a

    def state(self, aid):
        return self.engine.alarms[aid].state

    def submit(self, role, kind, alarm, **args):
        return self.gate.submit("hmi:" + role, role, kind, None, alarm=alarm, **args)


def moves(recs, aid=None):
    return [(r["id"], r["old"], r["new"]) for r in recs if aid is None or r["id"] == aid]


@pytest.fixture
def plant(tmp_path):
    p = Plant(tmp_path)
    assert p.step(n=3) == []          # a healthy plant: nothing raised
    return p


# ---- the state machine ------------------------------------------------------------------------
def test_every_state_transition_of_a_limit_alarm(plant):
    a = "fan1.flow_hi"
    plant.set("fan1", process_pv=45.0)
    recs = plant.step(n=11)
    assert moves(recs) == [(a, NORMAL, UNACK)]
    assert recs[0]["value"] == pytest.approx(45.0, abs=0.01) and recs[0]["priority"] == 2
    # acknowledge while active -> acknowledged; clear -> normal
    assert plant.submit("operator", "ack", a).accepted
    recs = plant.step()
    assert moves(recs) == [(a, UNACK, ACKED)] and recs[0]["who"] == "hmi:operator"
    plant.set("fan1", process_pv=30.0)
    assert moves(plant.step(n=6)) == [(a, ACKED, NORMAL)]
    # raised and cleared before anyone acknowledged -> returned unacknowledged
    plant.set("fan1", process_pv=45.0)
    plant.step(n=11)
    plant.set("fan1", process_pv=30.0)
    assert moves(plant.step(n=6)) == [(a, UNACK, RTNUN)]
    # active again before the ack -> unacknowledged again; clear; ack -> normal
    plant.set("fan1", process_pv=45.0)
    assert moves(plant.step(n=11)) == [(a, RTNUN, UNACK)]
    plant.set("fan1", process_pv=30.0)
    plant.step(n=6)
    assert plant.state(a) == RTNUN
    assert plant.submit("operator", "ack", a, reason="seen, damper checked").accepted
    recs = plant.step()
    assert moves(recs) == [(a, RTNUN, NORMAL)]
    assert recs[0]["who"] == "hmi:operator" and recs[0]["reason"] == "seen, damper checked"


def test_deadband_and_on_off_delays(plant):
    a = "fan1.flow_hi"
    plant.set("fan1", process_pv=41.0)
    plant.step(n=9)                     # over the limit for 9 s of a 10 s on-delay
    plant.set("fan1", process_pv=39.0)
    plant.step()                        # a dip restarts the delay
    plant.set("fan1", process_pv=41.0)
    assert plant.step(n=9) == [] and plant.state(a) == NORMAL
    assert moves(plant.step(n=2)) == [(a, NORMAL, UNACK)]
    plant.set("fan1", process_pv=38.5)  # under the limit, inside the 2.0 deadband
    assert plant.step(n=20) == [] and plant.state(a) == UNACK
    plant.set("fan1", process_pv=37.5)  # past the deadband: clears after the 5 s off-delay
    assert plant.step(n=4) == []
    assert moves(plant.step(n=2)) == [(a, UNACK, RTNUN)]


def test_a_bad_value_changes_no_limit_alarm_its_quality_alarm_reports_it(plant):
    plant.set("fan1", process_pv=45.0)
    plant.step(n=11)
    plant.quality[("fan1", "process_pv")] = regmap.Q_BAD
    recs = plant.step(n=20)
    assert plant.state("fan1.flow_hi") == UNACK          # held as it was, not cleared
    assert moves(recs) == [("fan1.process_pv.bad", NORMAL, UNACK)]


def test_shelving_with_reason_and_expiry(plant):
    a = "fan1.flow_hi"
    plant.set("fan1", process_pv=45.0)
    plant.step(n=11)
    no_reason = plant.submit("operator", "shelve", a, minutes=10)
    assert not no_reason.accepted and "reason" in no_reason.reason
    too_long = plant.submit("operator", "shelve", a, minutes=10000, reason="x")
    assert not too_long.accepted and "720" in too_long.reason
    assert plant.submit("operator", "shelve", a, minutes=10, reason="transmitter on test").accepted
    recs = plant.step()
    assert moves(recs) == [(a, UNACK, SHELVED)]
    assert recs[0]["who"] == "hmi:operator" and recs[0]["reason"] == "transmitter on test"
    assert recs[0]["shelved_until"] == pytest.approx(plant.clock.t - 1 + 600)
    # while shelved the condition clears and returns: nothing is annunciated
    plant.set("fan1", process_pv=30.0)
    plant.step(n=30)
    plant.set("fan1", process_pv=45.0)
    assert plant.step(n=30) == []
    recs = plant.step(n=560)                # the 10 min run out: back in view, still active
    assert moves(recs) == [(a, SHELVED, UNACK)] and recs[0]["who"] == "expiry"
    # unshelve before the expiry
    plant.submit("operator", "shelve", a, minutes=60, reason="again")
    plant.step()
    plant.set("fan1", process_pv=30.0)
    plant.step(n=10)
    assert plant.submit("operator", "unshelve", a).accepted
    assert moves(plant.step()) == [(a, SHELVED, NORMAL)]  # cleared meanwhile: normal
    nope = plant.submit("operator", "unshelve", a)
    assert not nope.accepted and "not shelved" in nope.reason


def test_suppressed_by_design_while_the_catalyst_is_cold(plant):
    a = "scr1.nh3_slip_hi"                  # default: suppressed below min_catalyst_temp_c
    cold = "scr1.flue_gas_temp_c < 300 or scr1.flue_gas_flow_nm3h < 200000"
    assert plant.engine.alarms[a].d.suppress_when == cold
    plant.set("scr1", flue_gas_temp_c=250.0, nh3_slip_ppm=8.0, dosing_blocked=1.0,
              interlocks=1, status=regmap.ST_ARMED | regmap.ST_INTERLOCK)
    recs = plant.step(n=120)
    assert moves(recs) == [("scr1.interlock", NORMAL, SUPPRESSED), (a, NORMAL, SUPPRESSED),
                           ("scr1.dosing_blocked", NORMAL, SUPPRESSED)]
    assert recs[1]["reason"] == "by design: " + cold
    plant.set("scr1", flue_gas_temp_c=320.0, dosing_blocked=0.0, interlocks=0,
              status=regmap.ST_ARMED)                       # warm: slip still high
    recs = plant.step()
    assert (a, SUPPRESSED, UNACK) in moves(recs)
    # a temperature nobody trusts never hides an alarm
    plant.submit("operator", "ack", a)
    plant.step()
    plant.quality[("scr1", "flue_gas_temp_c")] = regmap.Q_BAD
    plant.step(n=10)
    assert plant.state(a) == ACKED


def test_a_device_down_raises_one_alarm_and_suppresses_its_points(plant):
    plant.up["fan1"] = False
    recs = plant.step(n=30)
    raised = [r["id"] for r in recs if r["new"] == UNACK]
    assert raised == ["fan1.down"]
    fan1 = [a for a in plant.engine.alarms if a.startswith("fan1.") and a != "fan1.down"
            and a != "fan1.identity"]
    assert fan1 and all(plant.state(a) == SUPPRESSED for a in fan1)
    assert plant.state("fan.held") == SUPPRESSED
    assert plant.state("service.alarm_rate") == NORMAL
    plant.up["fan1"] = True
    recs = plant.step(n=3)
    assert ("fan1.down", UNACK, RTNUN) in moves(recs)
    assert all(plant.state(a) == NORMAL for a in fan1)


def test_more_than_ten_alarms_in_ten_minutes_is_itself_an_alarm(plant):
    a = "fan1.flow_hi"

    def flap():
        plant.set("fan1", process_pv=45.0)
        plant.step(dt=11, n=2)     # the first pass starts the 10 s on-delay
        plant.set("fan1", process_pv=30.0)
        plant.step(dt=6, n=2)
    for _ in range(10):
        flap()
    assert plant.state("service.alarm_rate") == NORMAL       # 10 in 10 min is the limit
    flap()
    assert plant.state("service.alarm_rate") == UNACK
    assert plant.engine.alarms["service.alarm_rate"].value == 11
    plant.step(dt=60, n=10)                                   # the window moves on
    assert plant.state("service.alarm_rate") == RTNUN
    assert plant.state(a) == RTNUN


def test_the_rate_window_stays_bounded_without_a_rate_alarm(tmp_path):
    p = Plant(tmp_path, extra=LIMIT + '\n[[alarms]]\nid = "service.alarm_rate"\nenabled = false\n')
    p.step()
    for _ in range(40):                       # 40 annunciations over 40 x 34 s = 23 min
        p.set("fan1", process_pv=45.0)
        p.step(dt=11, n=2)
        p.set("fan1", process_pv=30.0)
        p.step(dt=6, n=2)
    assert "service.alarm_rate" not in p.engine.alarms
    assert len(p.engine.annunciated) <= 18    # only the last 10 min are kept


def test_a_second_rate_alarm_in_the_config_is_evaluated_too(tmp_path):
    p = Plant(tmp_path, extra=LIMIT + '\n[[alarms]]\nid = "service.flood_10min"\nkind = "service"'
              '\ncondition = "alarm_rate"\non_delay_s = 60\npriority = 2\n')
    p.step(n=3)
    for _ in range(11):
        p.set("fan1", process_pv=45.0)
        p.step(dt=11, n=2)
        p.set("fan1", process_pv=30.0)
        p.step(dt=6, n=2)
    assert p.state("service.alarm_rate") == UNACK
    assert p.state("service.flood_10min") == NORMAL         # its own 60 s on-delay
    p.step(dt=30, n=3)
    assert p.state("service.flood_10min") == UNACK


def test_viewer_may_not_acknowledge_and_every_try_is_audited(plant):
    a = "fan1.flow_hi"
    plant.set("fan1", process_pv=45.0)
    plant.step(n=11)
    plant.audits()
    t = plant.submit("viewer", "ack", a)
    assert not t.accepted and "role viewer" in t.reason and "needs operator" in t.reason
    t2 = plant.submit("viewer", "shelve", a, minutes=5, reason="x")
    assert not t2.accepted
    assert plant.step() == [] and plant.state(a) == UNACK
    assert not plant.submit("operator", "ack", "fan1.nonsense").accepted
    plant.submit("engineer", "ack", a)                         # operator or above
    plant.step()
    bad_ack = plant.submit("operator", "ack", a)               # acknowledged already
    assert not bad_ack.accepted and "nothing to acknowledge" in bad_ack.reason
    aud = plant.audits()
    assert [(r["who"], r["kind"], r["target"], r["accepted"]) for r in aud] == [
        ("hmi:viewer", "ack", None, False), ("hmi:viewer", "shelve", None, False),
        ("hmi:operator", "ack", None, False), ("hmi:engineer", "ack", a, True),
        ("hmi:operator", "ack", a, False)]
    assert aud[3]["old"] == {"state": UNACK} and aud[3]["new"] == {"state": "acknowledged"}


def test_an_engineer_moves_a_limit_through_the_gate(plant):
    a = "fan1.flow_hi"
    plant.set("fan1", process_pv=45.0)
    plant.step(n=11)
    plant.audits()
    op = plant.submit("operator", "alarm_limit", a, values={"hi": 50.0})
    assert not op.accepted and "needs engineer" in op.reason
    for values, why in [({"lo": 10.0}, "no lo limit"), ({"gain": 1.0}, "not a limit key"),
                        ({"deadband": -1.0}, "outside"), ({"hi": float("nan")}, "a number"),
                        ({}, "expected")]:
        t = plant.submit("engineer", "alarm_limit", a, values=values)
        assert not t.accepted and why in t.reason, (values, t.reason)
    t = plant.submit("engineer", "alarm_limit", a, values={"hi": 50.0, "off_delay_s": 2.0},
                     reason="new damper, higher design flow")
    assert t.accepted
    plant.step()
    aud = [r for r in plant.audits() if r["accepted"]]
    assert aud[0]["old"] == {"hi": 40.0, "off_delay_s": 5.0} and aud[0]["new"]["hi"] == 50.0
    assert moves(plant.step(n=3)) == [(a, UNACK, RTNUN)]          # 45 is now under 50 - 2
    assert plant.cfg.alarms.defs[a].hi == 40.0                   # the config is untouched
    no_hi = plant.submit("engineer", "alarm_limit", "fan1.down", values={"hi": 1.0})
    assert not no_hi.accepted and "no hi" in no_hi.reason


# ---- the other kinds --------------------------------------------------------------------------
def test_quality_alarms_bad_stale_stuck(plant):
    plant.quality[("scr1", "o2_pct")] = regmap.Q_BAD
    recs = plant.step(n=6)                                     # 5 s on-delay
    assert moves(recs) == [("scr1.o2_pct.bad", NORMAL, UNACK)]
    plant.t_src[("scr1", "nox_in_mg_nm3")] = plant.wall()      # no new reading from here
    recs = plant.step(n=4)
    assert moves(recs) == [("scr1.nox_in_mg_nm3.stale", NORMAL, UNACK)]
    assert recs[0]["value"] > 3.0                              # its age, over stale_s
    plant.quality.clear()
    plant.t_src.clear()
    plant.step()
    p = plant.engine.alarms["scr1.nox_out_mg_nm3.stuck"]
    assert p.d.stuck_s == 900
    # O2 may be exactly constant (a steady boiler, the bench's model): no default stuck alarm
    assert not [a for a in plant.engine.alarms if a.endswith("o2_pct.stuck")]
    plant.points["scr1"]["nox_out_mg_nm3"] = 30.0
    frozen = plant.publish

    def publish():          # the analyzer's reading stops moving altogether
        frozen()
        dv = plant.hub.latest("device")["scr1"]
        pts = dict(dv["points"], nox_out_mg_nm3=(30.0, 0, plant.wall()))
        plant.hub.publish("device", "scr1", {"up": True, "points": pts})
    plant.publish = publish
    assert moves(plant.step(dt=60, n=14), "scr1.nox_out_mg_nm3.stuck") == []
    assert moves(plant.step(dt=60, n=2), "scr1.nox_out_mg_nm3.stuck") == [
        ("scr1.nox_out_mg_nm3.stuck", NORMAL, UNACK)]


def test_device_alarms_interlock_trip_identity_safe_state(plant):
    plant.set("fan1", status=regmap.ST_ARMED | regmap.ST_INTERLOCK, interlocks=2)
    assert moves(plant.step(n=3)) == [("fan1.interlock", NORMAL, UNACK)]
    plant.set("fan1", status=regmap.ST_ARMED, interlocks=0)
    assert moves(plant.step()) == [("fan1.interlock", UNACK, RTNUN)]
    # a comm-loss trip that happened while the host could not see the device
    plant.up["fan1"] = False
    plant.step(n=2)
    plant.up["fan1"] = True
    plant.set("fan1", comm_loss_trips=1, status=regmap.ST_SAFE_STATE | regmap.ST_COMM_LOST)
    recs = plant.step()
    assert ("fan1.comm_loss_trip", SUPPRESSED, UNACK) in moves(recs)
    plant.set("fan1", status=regmap.ST_ARMED)                  # the host re-arms it
    recs = plant.step(n=2)
    assert ("fan1.comm_loss_trip", UNACK, RTNUN) in moves(recs)
    # armed, then back in its safe state for over the 5 s on-delay
    plant.set("fan1", status=regmap.ST_SAFE_STATE)
    assert moves(plant.step(n=6), "fan1.safe_state") == [("fan1.safe_state", NORMAL, UNACK)]
    plant.hub.emit("event", {"t_s": 0, "kind": "identity_mismatch", "source": "scr1",
                             "text": "unit 3 answers as profile motor"})
    plant.step()    # the status still says identity ok from the last check: cleared at once
    assert plant.state("scr1.identity") == NORMAL
    real = plant.hub.publish

    def publish(topic, key, value):
        if topic == "status":
            value["devices"]["scr1"]["identity_ok"] = False
        real(topic, key, value)
    plant.hub.publish = publish
    plant.hub.emit("event", {"t_s": 0, "kind": "identity_mismatch", "source": "scr1", "text": ""})
    recs = plant.step()
    raised = [r for r in recs if r["new"] == UNACK]
    assert moves(raised) == [("scr1.identity", NORMAL, UNACK)] and raised[0]["priority"] == 1
    # its values are another device's: its point alarms are suppressed, not evaluated
    assert plant.state("scr1.nh3_slip_hi") == SUPPRESSED
    assert [r["reason"] for r in recs if r["id"] == "scr1.nh3_slip_hi"] == [
        "device identity mismatch"]


def test_loop_alarms_error_held_and_manual_too_long(plant):
    plant.loop["fan"]["mode"] = "error"
    assert moves(plant.step()) == [("fan.error", NORMAL, UNACK)]
    plant.loop["fan"]["mode"] = "auto"
    plant.step()
    plant.loop["fan"]["t_s"] = plant.clock.t                    # its last run, from now on
    assert moves(plant.step(n=31), "fan.held") == []
    assert moves(plant.step(n=2), "fan.held") == [("fan.held", NORMAL, UNACK)]
    del plant.loop["fan"]["t_s"]
    plant.loop["fan"].update(mode="manual", manual=True)
    recs = plant.step(dt=60, n=29)
    assert moves(recs, "fan.manual") == []                      # 30 min default
    assert moves(plant.step(dt=60, n=2), "fan.manual") == [("fan.manual", NORMAL, UNACK)]
    assert plant.engine.alarms["fan.manual"].d.priority == 4


def test_emission_alarms_projected_mean_and_exceedance_hour(plant):
    a = "emission.nox_projected"
    # 30 min into the hour at a mean of 40; the analyzer now reads 70 (6 % O2):
    # projected 55 > 50 (held 60 s before it raises)
    plant.kpis.update(nox_open_mean_mg_nm3=40.0, nox_open_valid_s=1800.0)
    plant.clock.t += 1800 - 3
    plant.set("scr1", nox_out_mg_nm3=70.0)
    recs = plant.step(n=62)
    assert moves(recs, a) == [(a, NORMAL, UNACK)]
    assert [r["value"] for r in recs if r["id"] == a][0] == pytest.approx(55.0, abs=1.0)
    plant.set("scr1", nox_out_mg_nm3=35.0)                   # projected 37.5
    assert moves(plant.step(n=62), a) == [(a, UNACK, RTNUN)]
    b = "emission.nox_exceedance"
    plant.kpis.update(nox_hours=1, nox_exceed_hours=1)
    assert moves(plant.step(), b) == [(b, NORMAL, UNACK)]
    plant.kpis.update(nox_hours=2)                            # the next hour closed under
    assert moves(plant.step(), b) == [(b, UNACK, RTNUN)]


def test_service_alarms_historian_and_cycle_overruns(plant):
    plant.historian["error"] = "OperationalError: database or disk is full"
    assert moves(plant.step()) == [("service.historian_failing", NORMAL, UNACK)]
    plant.historian.update(error=None, db_mb=0.96 * plant.cfg.historian["max_mb"])
    recs = plant.step()
    assert moves(recs) == [("service.historian_failing", UNACK, RTNUN),
                           ("service.historian_full", NORMAL, UNACK)]
    plant.overruns = 3
    assert moves(plant.step(), "service.cycle_overrun") == [
        ("service.cycle_overrun", NORMAL, UNACK)]
    assert moves(plant.step(n=58), "service.cycle_overrun") == []   # held 60 s
    assert moves(plant.step(n=3), "service.cycle_overrun") == [
        ("service.cycle_overrun", UNACK, RTNUN)]


def test_a_failing_alarm_or_a_damaged_request_file_never_stops_the_others(tmp_path):
    events = []
    p = Plant(tmp_path)
    p.engine.on_event = lambda kind, source, text="": events.append((kind, source))
    p.step()
    real = p.engine.condition

    def condition(a, t):
        if a.d.id == "fan1.process_pv.stale":
            raise KeyError("boom")
        return real(a, t)
    p.engine.condition = condition
    p.set("fan1", process_pv=45.0)
    assert moves(p.step(n=11)) == [("fan1.flow_hi", NORMAL, UNACK)]   # the others go on
    assert events == [("alarm_error", "fan1.process_pv.stale")]      # reported once a minute
    assert p.engine.errors == 11 and p.engine.summary()["errors"] == 11
    p.engine.condition = real
    # a damaged request file: the usable request is applied, the rest refused or skipped
    p.cfg.state_dir.mkdir(parents=True, exist_ok=True)
    damaged = ('{"requests": [{"seq": 1, "wall": "yesterday", "kind": "ack", '
               '"alarm": "fan1.flow_hi"}, {"seq": 2, "wall": 1.0, "kind": "ack", '
               '"alarm": ["x"]}, "junk", {"seq": "3"}]}')
    (p.cfg.state_dir / "alarm_requests.json").write_text(damaged)
    p.step()
    assert p.state("fan1.flow_hi") == ACKED
    assert ("control_error", "['x']") in events and p.engine.errors == 11
    # the same file found at a start: history, not replayed, and no fault
    q = Plant(tmp_path)
    q.engine.on_event = lambda kind, source, text="": events.append((kind, source))
    del events[:]
    q.set("fan1", process_pv=45.0)
    q.step(n=12)
    assert q.state("fan1.flow_hi") == UNACK and events == [] and q.engine.errors == 0


# ---- the historian ------------------------------------------------------------------------------
def test_every_transition_is_a_historian_row_with_who(tmp_path):
    hist = Historian(tmp_path / "h.db", commit_s=0.05)
    p = Plant(tmp_path, hist=hist)
    p.step(n=3)
    p.set("fan1", process_pv=45.0)
    seen = p.step(n=11)
    p.submit("operator", "ack", "fan1.flow_hi")
    seen += p.step()
    p.submit("operator", "shelve", "fan1.flow_hi", minutes=5, reason="calibration")
    seen += p.step()
    seen += p.step(n=301)
    hist.close()
    db = sqlite3.connect(tmp_path / "h.db")
    rows = db.execute("SELECT id, old, new, who, reason, value, shelved_until FROM alarms "
                      "ORDER BY rowid").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == moves(seen) == [
        ("fan1.flow_hi", NORMAL, UNACK), ("fan1.flow_hi", UNACK, ACKED),
        ("fan1.flow_hi", ACKED, SHELVED), ("fan1.flow_hi", SHELVED, UNACK)]
    assert rows[1][3] == "hmi:operator" and rows[2][3:5] == ("hmi:operator", "calibration")
    assert rows[0][5] == pytest.approx(45.0, abs=0.01) and rows[2][6] is not None
    assert rows[3][3] == "expiry"
    state = dict(db.execute("SELECT id, state FROM alarm_state").fetchall())
    assert state["fan1.flow_hi"] == UNACK and state["fan1.down"] == NORMAL
    assert len(state) == len(p.engine.alarms)
    # retention prunes alarm transitions like every other table
    h2 = Historian(tmp_path / "h.db", retention_days=1)
    assert h2.prune(p.clock.t + 2 * 86400) >= 4
    h2.close()
    assert db.execute("SELECT count(*) FROM alarms").fetchone()[0] == 0


def test_a_restart_keeps_unacknowledged_and_shelved_alarms(tmp_path):
    hist = Historian(tmp_path / "h.db", commit_s=0.05)
    p = Plant(tmp_path, hist=hist)
    p.step(n=3)
    p.set("fan1", process_pv=45.0)
    p.step(n=11)
    assert p.submit("operator", "shelve", "scr1.o2_pct.bad", minutes=60,
                    reason="analyzer service").accepted
    p.step()
    hist.close()
    hist2 = Historian(tmp_path / "h.db", commit_s=0.05)
    q = Plant(tmp_path, hist=hist2)
    q.clock.t = p.clock.t + 30                  # back 30 s later
    assert q.recorder.restored == 2
    assert q.state("fan1.flow_hi") == UNACK and q.state("scr1.o2_pct.bad") == SHELVED
    q.set("fan1", process_pv=30.0)              # the flow came down while it was off
    recs = q.step(n=7)
    assert moves(recs) == [("fan1.flow_hi", UNACK, RTNUN)]   # still waits for its ack
    assert q.state("scr1.o2_pct.bad") == SHELVED
    hist2.close()


# ---- the config -------------------------------------------------------------------------------
BAD = [
    ('id = "fan1.speed_hi"\npoint = "fan1.speed_actual_pct"\nhi = 90',
     "alarms[0] 'fan1.speed_hi'.kind", "a new alarm needs a kind"),
    ('id = "x"\nkind = "limit"\npoint = "fan1.process_pv"\nhi = 1\nlo = 0', "alarms[0] 'x'.lo",
     "one limit per alarm"),
    ('id = "x"\nkind = "limit"\npoint = "fan1.nope"\nhi = 1', "alarms[0] 'x'.point",
     "has no point 'nope'"),
    ('id = "x"\nkind = "limit"\npoint = "fan1.process_pv"', "alarms[0] 'x'.hi", "needs hi or lo"),
    ('id = "x"\nkind = "quality"\npoint = "fan1.status"\ncondition = "bad"',
     "alarms[0] 'x'.point", "no quality slot"),
    ('id = "x"\nkind = "device"\ndevice = "fan9"\ncondition = "down"', "alarms[0] 'x'.device",
     "not one of"),
    ('id = "fan1.down"\npriority = 5', "alarms[0] 'fan1.down'.priority", "outside 1..4"),
    ('id = "fan1.down"\nkind = "limit"', "alarms[0] 'fan1.down'.kind", "default device alarm"),
    ('id = "fan1.down"\nsuppress_when = "fan1.speed >> 3"',
     "alarms[0] 'fan1.down'.suppress_when", "no point 'speed'"),
    ('id = "fan1.down"\nsuppress_when = "down(fan1) and"',
     "alarms[0] 'fan1.down'.suppress_when", "expected more"),
    ('id = "x"\nkind = "loop"\nloop = "fan"\ncondition = "held"\nhi = 3',
     "alarms[0] 'x'.hi", "not a key of a loop alarm"),
    ('id = "x"\nkind = "emission"\npollutant = "so2"\ncondition = "projected"',
     "alarms[0] 'x'.pollutant", "no so2_point"),
]


@pytest.mark.parametrize("entry,key,msg", BAD)
def test_config_errors_name_the_entry_and_its_line(tmp_path, entry, key, msg):
    text = PLANT + "\n[[alarms]]\n" + entry + "\n"
    (tmp_path / "plant.toml").write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "plant.toml")
    assert e.value.key == key and msg in str(e.value)
    bad_key = key.rsplit(".", 1)[1]
    line = text.splitlines()[e.value.line - 1]
    assert line.startswith(bad_key + " =") or line.startswith("[[alarms]]")


def test_a_second_entry_is_named_by_its_index_and_line(tmp_path):
    text = PLANT + LIMIT + '\n[[alarms]]\nid = "fan1.flow_hi"\nenabled = false\n'
    (tmp_path / "plant.toml").write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "plant.toml")
    assert e.value.key == "alarms[1] 'fan1.flow_hi'.id" and "defined twice" in str(e.value)
    assert e.value.line == text.splitlines().index('id = "fan1.flow_hi"', 30) + 1


def test_defaults_can_be_changed_or_dropped(tmp_path):
    extra = ('\n[[alarms]]\nid = "fan.manual"\non_delay_s = 600\npriority = 3\n'
             '\n[[alarms]]\nid = "scr1.nox_out_mg_nm3.stuck"\nenabled = false\n'
             '\n[alarm_settings]\nrate_limit = 20\n')
    (tmp_path / "plant.toml").write_text(PLANT + extra)
    cfg = load_config(tmp_path / "plant.toml")
    d = cfg.alarms.defs
    assert d["fan.manual"].on_delay_s == 600 and d["fan.manual"].priority == 3
    assert "scr1.nox_out_mg_nm3.stuck" not in d and cfg.alarms.settings.rate_limit == 20
    (tmp_path / "plant.toml").write_text(PLANT + "\n[alarm_settings]\ndefaults = false\n")
    assert load_config(tmp_path / "plant.toml").alarms.defs == {}


def test_the_example_config_loads_with_its_alarms(capsys):
    assert main(["check", "-c", "examples/plant.toml"]) == 0
    assert "alarms: 85 defined, 3 of them added or changed by [[alarms]]" in capsys.readouterr().out
    cfg = load_config("examples/plant.toml")
    d = cfg.alarms.defs
    assert d["scr1.nh3_slip_hi"].suppress_when.startswith("scr1.flue_gas_temp_c <")
    assert all(1 <= a.priority <= 4 for a in d.values())
    assert any(a.origin == "config" for a in d.values())


# ---- a run on the fake line, and the CLI ------------------------------------------------------
RUN = textwrap.dedent("""
    [service]
    name = "run"
    stale_s = 3.0
    [lines.l1]
    kind = "tcp"
    host = "127.0.0.1"
    [devices.fan1]
    line = "l1"
    unit = 1
    profile = "motor"
    [devices.fan2]
    line = "l1"
    unit = 2
    profile = "motor"
    [groups.process]
    period_ms = 100
    [loops.fan]
    plant = "fan"
    group = "process"
    devices = { drive = "fan1" }
    process = { flow_sp_m3s = 30.0, flow_design_m3s = 50.0 }
    params = { period_s = 0.1 }
    [historian]
    commit_s = 0.1
    [alarm_settings]
    first_contact_s = 1.0
    """)


def test_greenedge_alarms_json_on_the_historian_of_a_run(tmp_path, capsys):
    """fan2 is configured but nothing answers at unit 2: after first_contact_s
    it is down (one alarm). The CLI acknowledges it while the service runs,
    through the control file and the gate; after the run `greenedge alarms
    --json` lists it from the stopped service's historian."""
    from hil_tests.fakeline import fake_service
    (tmp_path / "plant.toml").write_text(RUN)
    cfg = load_config(tmp_path / "plant.toml")
    svc = fake_service(cfg, [1])
    conf = str(tmp_path / "plant.toml")

    async def until(state):                     # no fixed timing: a loaded machine is slow
        for _ in range(600):
            if svc.alarms.alarms["fan2.down"].state == state:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("fan2.down never %s" % state)

    async def run():
        task = asyncio.create_task(svc.run(120.0))
        await until(UNACK)
        assert main(["alarms", "-c", conf, "--ack", "fan2.down"]) == 0
        await until(ACKED)
        svc.stop()
        return await task
    status = asyncio.run(run())
    assert status["alarms"]["defined"] == len(cfg.alarms.defs)
    capsys.readouterr()
    assert main(["alarms", "-c", conf, "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(cfg.alarms.defs)
    assert rows["fan2.down"]["state"] == ACKED and rows["fan2.down"]["who"].startswith("cli")
    assert rows["fan1.down"]["state"] == NORMAL and rows["fan.error"]["state"] == NORMAL
    assert main(["alarms", "-c", conf, "--active", "--json"]) == 0
    active = [r["id"] for r in json.loads(capsys.readouterr().out)]
    assert "fan2.down" in active and "fan1.down" not in active
    db = sqlite3.connect(cfg.historian["path"])
    audit = db.execute("SELECT who, role, kind, target, accepted FROM audit "
                       "WHERE kind = 'ack'").fetchall()
    assert len(audit) == 1 and audit[0][1:] == ("operator", "ack", "fan2.down", 1)
    trans = db.execute("SELECT old, new FROM alarms WHERE id = 'fan2.down' "
                       "ORDER BY rowid").fetchall()
    assert trans == [(NORMAL, UNACK), (UNACK, ACKED)]
    # the human listing and a request that cannot be right
    assert main(["alarms", "-c", conf, "--active"]) == 0
    assert "fan2.down" in capsys.readouterr().out
    assert main(["alarms", "-c", conf, "--shelve", "fan2.down", "--minutes", "10"]) == 2
    assert "--reason" in capsys.readouterr().err
    assert main(["alarms", "-c", conf, "--ack", "fan3.down"]) == 2
    assert "no alarm 'fan3.down'" in capsys.readouterr().err


def test_requests_from_before_the_service_started_are_not_replayed(tmp_path):
    from controller.alarms.requests import request
    p = Plant(tmp_path)
    p.step()
    p.up["fan1"] = False
    p.step(n=3)
    assert p.state("fan1.down") == UNACK
    request(p.cfg, "ack", "fan1.down", "cli:old")
    p.engine._req_mtime = None
    p.engine.t_start_wall = 9e18          # as if this engine started after the request
    p.engine._req_seq = None
    p.step()
    assert p.state("fan1.down") == UNACK
    request(p.cfg, "ack", "fan1.down", "cli:ann")
    recs = p.step()
    assert moves(recs) == [("fan1.down", UNACK, ACKED)] and recs[0]["who"] == "cli:ann"
    request(p.cfg, "shelve", "fan1.down", "cli:bob", minutes=15, reason="cable replaced")
    recs = p.step()
    assert moves(recs) == [("fan1.down", ACKED, SHELVED)]
    assert recs[0]["reason"] == "cable replaced" and recs[0]["who"] == "cli:bob"
    with pytest.raises(ValueError, match="needs a --reason"):
        request(p.cfg, "shelve", "fan1.down", "cli:bob", minutes=15)
    request(p.cfg, "unshelve", "fan1.down", "cli:bob")
    assert moves(p.step()) == [("fan1.down", SHELVED, UNACK)]     # still down: annunciates
