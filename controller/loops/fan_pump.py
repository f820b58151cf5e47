"""Fans and pumps. Baseline: fixed speed (direct on line), flow held by a PI on
the outlet damper / throttle valve: what most plants run today."""

from cython_ext import load
from controller.loops.base import Strategy, pi_step


class DamperBaseline(Strategy):
    plant_options = {"drive": "dol"}

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=20.0, ti=5.0, umin=5.0, umax=100.0, dt=self.period_s)
        self.pid.u_man[0] = 100.0

    def run(self, t_s, snap):
        d = snap["drive"]
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
    measurement is lost the speed holds (manual, bumpless) rather than hunting."""

    plant_options = {"drive": "vfd"}
    MIN_SPEED_PCT = 20.0

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=40.0, ti=3.0, umin=self.MIN_SPEED_PCT, umax=100.0,
                           dt=self.period_s, tt=2.0)
        self.pid.u_man[0] = 60.0

    def run(self, t_s, snap):
        d = snap["drive"]
        sp = snap["process"]["flow_sp_m3s"]
        design = snap["process"]["flow_design_m3s"]
        pi_step(self.pid, sp / design, d["process_pv"] / design)  # flow unknown: speed holds
        return {"drive": {"run_cmd": 1, "speed_ref_pct": float(self.pid.u[0]),
                          "damper_cmd_pct": 100.0}}
