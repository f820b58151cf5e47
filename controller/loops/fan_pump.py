"""Fans and pumps. Baseline: fixed speed (direct on line), flow held by a PI on
the outlet damper / throttle valve: what most plants run today."""

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

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=20.0, ti=5.0, umin=5.0, umax=100.0, dt=self.period_s)
        self.pid.u_man[0] = 100.0
        self.started = False

    def run(self, t_s, snap):
        d = snap["drive"]
        if not self.started:
            self.started = True
            take_over(self.pid, d.get("damper_pos_pct"))
        sp = snap["process"]["flow_sp_m3s"]
        design = snap["process"]["flow_design_m3s"]  # flows in fractions of design
        pi_step(self.pid, sp / design, d["process_pv"] / design)  # flow unknown: damper holds
        return {"drive": {"run_cmd": 1, "speed_ref_pct": 100.0,
                          "damper_cmd_pct": float(self.pid.u[0])}}


class VsdStrategy(Strategy):
    """Speed control on the VFD with the damper/throttle fully open: flow is held
    by a PI on the speed reference (affinity laws: power ~ speed^3), with a
    minimum speed (below it a pump with static head delivers nothing) and the
    drive's resonance band left to the firmware's skip band. If the flow
    measurement is lost, or stuck (the same reading STUCK_N times in a row), the
    speed holds (manual, bumpless) rather than hunting."""

    plant_options = {"drive": "vfd"}
    PARAMS = ("kp", "ti")     # flow PI: % speed per unit of design flow, s
    MIN_SPEED_PCT = 20.0
    STUCK_N = 10              # identical readings in a row: a stuck transmitter

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        # Defaults for a fan (no static head) polled within a second; a pump
        # against static head has a steeper flow/speed curve: halve kp, slow ti.
        self.pid.configure(kp=self.params.get("kp", 40.0), ti=self.params.get("ti", 3.0),
                           umin=self.MIN_SPEED_PCT, umax=100.0,
                           dt=self.period_s, tt=2.0)
        self.pid.u_man[0] = 60.0
        self.started = False
        self.last_pv = None
        self.same = 0

    def run(self, t_s, snap):
        d = snap["drive"]
        if not self.started:
            self.started = True
            if _on_run(d):
                # The drive's own output frequency is the speed it runs at; the
                # device's speed feedback echoes its output (its safe value
                # until the host arms it).
                hz = d.get("drive_output_hz")
                take_over(self.pid, 2.0 * hz if good(hz) and hz > 0 else d.get("speed_actual_pct"))
        sp = snap["process"]["flow_sp_m3s"]
        design = snap["process"]["flow_design_m3s"]
        pv = d["process_pv"]
        # A live transmitter never repeats its reading exactly for long; one
        # that does is stuck and counts as unknown.
        self.same = self.same + 1 if good(pv) and pv == self.last_pv else 0
        self.last_pv = pv
        if self.same >= self.STUCK_N:
            pv = float("nan")
        pi_step(self.pid, sp / design, pv / design)  # flow unknown: speed holds
        return {"drive": {"run_cmd": 1, "speed_ref_pct": float(self.pid.u[0]),
                          "damper_cmd_pct": 100.0}}
