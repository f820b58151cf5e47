"""Peer for the kernels benchmark: the PID bank's law vectorised with numpy.

Same features as cython_ext.pid (setpoint weights, filtered derivative on
measurement, back-calculation, limits, rate limit, feedforward, manual/held
tracking, bumpless gain changes); every operation is a whole-array numpy call,
so each step allocates temporaries: the cost the fused Cython loop avoids.
"""

import numpy as np


class NumpyPid:
    def __init__(self, n, kp=1.0, ti=np.inf, td=0.0, tf=1.0, b=1.0, c=0.0, tt=np.inf,
                 umin=-np.inf, umax=np.inf, rate=np.inf, dt=1.0):
        f = lambda v: np.full(n, float(v))
        self.kp, self.ti, self.td, self.tf = f(kp), f(ti), f(td), f(tf)
        self.b, self.c, self.tt = f(b), f(c), f(tt)
        self.umin, self.umax, self.rate, self.dt = f(umin), f(umax), f(rate), f(dt)
        self.sp, self.pv, self.ff, self.u_man, self.u_track = (np.zeros(n) for _ in range(5))
        self.auto = np.ones(n, dtype=bool)
        self.held = np.zeros(n, dtype=bool)
        self.I, self.D, self.e_prev, self.u_prev = (np.zeros(n) for _ in range(4))
        self.kp_last, self.b_last = self.kp.copy(), self.b.copy()
        self.init = False
        self.u = np.zeros(n)

    def step(self):
        sp, pv = self.sp, self.pv
        e_p = self.b * sp - pv
        e_d = self.c * sp - pv
        if not self.init:
            self.e_prev = e_d.copy()
            self.u_prev = np.clip(self.u_man, self.umin, self.umax)
            self.init = True
        changed = (self.kp != self.kp_last) | (self.b != self.b_last)
        self.I = np.where(changed, self.I + self.kp_last * (self.b_last * sp - pv) - self.kp * e_p, self.I)
        self.kp_last, self.b_last = self.kp.copy(), self.b.copy()
        P = self.kp * e_p
        self.D = np.where(self.td > 0, (self.tf / (self.tf + self.dt)) * self.D
                          + (self.kp * self.td / (self.tf + self.dt)) * (e_d - self.e_prev), 0.0)
        self.e_prev = e_d
        v = P + self.I + self.D + self.ff
        a = np.clip(v, self.umin, self.umax)
        a = np.clip(a, self.u_prev - self.rate * self.dt, self.u_prev + self.rate * self.dt)
        track = np.where(self.auto, self.u_track, np.clip(self.u_man, self.umin, self.umax))
        tracking = ~self.auto | self.held
        a = np.where(tracking, track, a)
        self.I = np.where(tracking, a - P - self.D - self.ff,
                          self.I + self.kp * self.dt / self.ti * (sp - pv) + self.dt / self.tt * (a - v))
        self.u_man = np.where(tracking, self.u_man, a)
        self.u_prev = a
        self.u = a
        return a
