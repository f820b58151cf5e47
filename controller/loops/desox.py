"""Wet FGD. Baseline: every recirculation pump running, a fixed pH setpoint held
by a PI on the limestone feeder, the oxidation blower at full output."""

from cython_ext import load
from controller.loops.base import Strategy, good


class AllPumpsBaseline(Strategy):
    PH_SP = 5.5

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=40.0, ti=900.0, umin=0.0, umax=100.0, dt=self.period_s, tt=300.0)
        self.pid.u_man[0] = 45.0

    def run(self, t_s, snap):
        f = snap["fgd"]
        if good(f["ph"]):
            self.pid.set_mode(0, True)
            self.pid.sp[0], self.pid.pv[0] = self.PH_SP, f["ph"]
        else:
            self.pid.set_mode(0, False)
        self.pid.step()
        cmd = {"pump%d_run" % i: 1 for i in range(1, 6)}
        cmd.update(feeder_cmd_pct=float(self.pid.u[0]), blower_cmd_pct=100.0)
        return {"fgd": cmd}
