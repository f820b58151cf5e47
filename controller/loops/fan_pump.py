"""Fans and pumps. Baseline: fixed speed (direct on line), flow held by a PI on
the outlet damper / throttle valve: what most plants run today."""

import math

from cython_ext import load
from controller.loops.base import Strategy, good, pi_step


def _on_run(d):
    r = d.get("running")
    return good(r) and bool(r)


def take_over(pid, actual):
    """First run on a running train: start the PI from where the actuator is
    (one manual step tracks it), so taking over moves nothing."""
    if good(actual):
        pid.u_man[0] = actual
        pid.set_mode(0, False)
        pid.step()


class DamperBaseline(Strategy):
    plant_options = {"drive": "dol"}
    TRACK = {("drive", "damper_cmd_pct"): ("pid", 1.0)}

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=20.0, ti=5.0, umin=5.0, umax=100.0, dt=self.period_s)
        self.pid.u_man[0] = 100.0
        self.started = False

    def run(self, t_s, snap):
        d = snap["drive"]
        dt = self.tick(t_s)
        if not self.started:
            self.started = True
            take_over(self.pid, d.get("damper_pos_pct"))
        sp = snap["process"]["flow_sp_m3s"]
        design = snap["process"]["flow_design_m3s"]  # flows in fractions of design
        pi_step(self.pid, sp / design, d["process_pv"] / design, dt=dt)  # flow unknown: damper holds
        return {"drive": {"run_cmd": 1, "speed_ref_pct": 100.0,
                          "damper_cmd_pct": float(self.pid.u[0])}}


class VsdStrategy(Strategy):
    """Speed control on the VFD with the damper/throttle fully open: flow is held
    by speed (affinity laws: power ~ speed^3), with a minimum speed (below it a
    pump with static head delivers nothing) and the drive's resonance band left
    to the firmware's skip band.

    - Feedforward through the system curve: the machine's head n^2 H0 -
      (H0 - Hd) x^2 meets the system's Hs + (Hd - Hs) x^2 at the speed
      n = sqrt(s + (1 - s) x^2) for the flow x (fraction of design), s = Hs/H0
      the static head over the shut-off head (param static_head: 0 for a fan
      against friction only). A demand change moves the speed at once.
    - A PI trim on the measured flow (kp, ti) takes up what the curve misses
      (wear, a wrong static head, a damper not quite open). Tuned for a loop
      sampled every 1 to 8 s behind up to 8 s of measurement and command delay
      (a shared RS-485 line at 60x on the HIL bench; a slow line in a plant).
    - Flow measurement lost, or stuck (the same reading STUCK_N times in a
      row): the speed follows the demand through the curve with the last trim
      (manual, bumpless back); demand unknown as well: the speed holds.
    """

    plant_options = {"drive": "vfd"}
    TRACK = {("drive", "speed_ref_pct"): ("pid", 1.0)}
    PARAMS = ("kp", "ti", "static_head")  # % speed per unit of design flow, s, Hs/H0
    CONFIG = ("period_s", "s")             # the static head comes from the config
    KP, TI = 20.0, 20.0       # the trim: the curve carries the demand
    STATIC_HEAD = 0.0         # a fan: flow ~ speed
    MIN_SPEED_PCT = 20.0
    STUCK_N = 10              # identical readings in a row: a stuck transmitter

    def __init__(self, params=None):
        super().__init__(params)
        self.s = float(self.params.get("static_head", self.STATIC_HEAD))
        if not 0.0 <= self.s <= 0.9:
            raise ValueError("static_head = %r: expected 0 to 0.9 of the shut-off head" % self.s)
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=self.params.get("kp", self.KP), ti=self.params.get("ti", self.TI),
                           umin=self.MIN_SPEED_PCT, umax=100.0,
                           dt=self.period_s, tt=2.0)
        self.pid.u_man[0] = 60.0
        self.started = False
        self.last_pv = None
        self.same = 0
        self.trim = 0.0           # the PI's share of the speed at the last good flow

    def speed_for(self, x):
        """Speed (%) that delivers x (flow / design flow) on the system curve."""
        return 100.0 * math.sqrt(self.s + (1.0 - self.s) * max(x, 0.0) ** 2)

    def run(self, t_s, snap):
        d = snap["drive"]
        dt = self.tick(t_s)
        sp = snap["process"]["flow_sp_m3s"]
        design = snap["process"]["flow_design_m3s"]
        x = sp / design if good(sp) and good(design) and design > 0 else float("nan")
        if good(x):
            self.pid.ff[0] = self.speed_for(x)
        ff = float(self.pid.ff[0])  # demand unknown: the last one
        if not self.started:
            self.started = True
            if _on_run(d):
                # The drive's own output frequency is the speed it runs at; the
                # device's speed feedback echoes its output (its safe value
                # until the host arms it).
                hz = d.get("drive_output_hz")
                take_over(self.pid, 2.0 * hz if good(hz) and hz > 0 else d.get("speed_actual_pct"))
                self.trim = float(self.pid.u[0]) - ff  # what the curve misses now
        pv = d["process_pv"]
        # A live transmitter never repeats its reading exactly for long; one
        # that does is stuck and counts as unknown.
        self.same = self.same + 1 if good(pv) and pv == self.last_pv else 0
        self.last_pv = pv
        if self.same >= self.STUCK_N or not good(x):
            pv = float("nan")
        fallback = ff + self.trim if good(x) else None  # the curve, or hold
        u = pi_step(self.pid, x, pv / design, fallback=fallback, dt=dt)
        if good(pv):
            self.trim = u - ff
        return {"drive": {"run_cmd": 1, "speed_ref_pct": u, "damper_cmd_pct": 100.0}}


class PumpVsdStrategy(VsdStrategy):
    """A pump against static head: 40 % of the design head, 1.25 x design head
    at shut-off (hil_tests/plants/params/pump.toml), so s = 0.32. The
    flow/speed curve is steep near the static head (at 45 % flow, 1 % speed
    is ~2 % flow): half the fan's trim gain, a slower integral."""

    KP, TI = 10.0, 30.0
    STATIC_HEAD = 0.32
