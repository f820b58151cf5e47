"""Compressed air. Baseline: cascaded pressure switches (each fixed machine loads
below its cut-in and unloads above its cut-out, bands stacked downwards) with
the VSD machine on a PI at the top of the cascade; motors stop after a run-on
time unloaded. Typical of stations with no master controller."""

from cython_ext import load
from controller.loops.base import Strategy, good

MACHINES = ("c1", "c2", "c3")


class CascadeBaseline(Strategy):
    BANDS = {"c1": (6.9, 7.5), "c2": (6.7, 7.3), "c3": (6.5, 7.1)}
    VSD_SP = 7.2
    RUN_ON_S = 600.0

    def __init__(self, params=None):
        super().__init__(params)
        self.loaded = {m: False for m in MACHINES}
        self.unloaded_since = {m: 0.0 for m in MACHINES}
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=40.0, ti=20.0, umin=23.0, umax=100.0, dt=self.period_s)
        self.last_p = 7.0

    def run(self, t_s, snap):
        p = snap["c1"]["discharge_pressure_bar"]
        p = p if good(p) else self.last_p
        self.last_p = p
        out = {}
        for m in MACHINES:
            on, off = self.BANDS[m]
            if p < on:
                self.loaded[m] = True
            elif p > off:
                if self.loaded[m]:
                    self.unloaded_since[m] = t_s
                self.loaded[m] = False
            run = self.loaded[m] or t_s - self.unloaded_since[m] < self.RUN_ON_S
            out[m] = {"run_cmd": int(run), "load_cmd": int(self.loaded[m]), "speed_ref_pct": 0.0}
        self.pid.sp[0], self.pid.pv[0] = self.VSD_SP, p
        self.pid.step()
        out["vsd"] = {"run_cmd": 1, "load_cmd": 1, "speed_ref_pct": float(self.pid.u[0])}
        return out
