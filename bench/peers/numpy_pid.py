"""Peer for the kernels benchmark: the PID bank's law vectorised with numpy, as
an expert writes it.

Same law and features as cython_ext.pid (setpoint weights, filtered derivative
on measurement, back-calculation, limits, rate limit, feedforward, manual/held
tracking, bumpless gain changes) and the same derived coefficients, computed
once when the tunings are set (the bank's _derive): the filter's a_d and b_d,
k_i = kp*dt/ti, k_t = dt/tt, the rate step rate*dt. A step is a fixed sequence
of whole-array numpy calls into preallocated buffers (out=, in-place), and the
rare paths (a gain change, loops in manual or held) are taken only when some
loop needs them. What remains is what numpy cannot avoid: one pass over memory
per operation instead of one fused pass per loop.
"""

import numpy as np

AUTO, MANUAL = 1, 0


class NumpyPid:
    def __init__(self, n, kp=1.0, ti=np.inf, td=0.0, tf=1.0, b=1.0, c=0.0, tt=np.inf,
                 umin=-np.inf, umax=np.inf, rate=np.inf, dt=1.0):
        self.n = n
        f = lambda v: np.full(n, float(v))  # noqa: E731
        self.sp, self.pv, self.ff, self.u_man, self.u_track = (np.zeros(n) for _ in range(5))
        self.mode = np.full(n, AUTO, dtype=np.int8)
        self.held = np.zeros(n, dtype=np.int8)
        self.I, self.D, self.e_prev = np.zeros(n), np.zeros(n), np.zeros(n)
        self.u = np.zeros(n)
        self._t = [np.zeros(n) for _ in range(5)]      # scratch: no allocation per step
        self.init = False
        self.configure(kp=f(kp), ti=f(ti), td=f(td), tf=f(tf), b=f(b), c=f(c), tt=f(tt),
                       umin=f(umin), umax=f(umax), rate=f(rate), dt=f(dt))
        self.kp_last, self.b_last = self.kp.copy(), self.b.copy()

    def configure(self, **g):
        for k, v in g.items():
            setattr(self, k, np.broadcast_to(np.asarray(v, float), (self.n,)).copy())
        self.ad = np.where(self.td > 0, self.tf / (self.tf + self.dt), 0.0)
        self.bd = self.kp * self.td / (self.tf + self.dt)
        self.ki = self.kp * self.dt / self.ti
        self.kt = self.dt / self.tt
        self.rdt = self.rate * self.dt

    def step(self):
        sp, pv, I, D, u = self.sp, self.pv, self.I, self.D, self.u
        ep, ed, P, v, t = self._t
        np.multiply(self.b, sp, out=ep)
        ep -= pv
        np.multiply(self.c, sp, out=ed)
        ed -= pv
        if not self.init:
            self.e_prev[:] = ed
            np.clip(self.u_man, self.umin, self.umax, out=u)
            self.kp_last[:], self.b_last[:] = self.kp, self.b
            D[:] = 0.0
            self.init = True
        changed = (self.kp != self.kp_last) | (self.b != self.b_last)
        if changed.any():                     # bumpless gain change: rare
            I[changed] += (self.kp_last * (self.b_last * sp - pv) - self.kp * ep)[changed]
            self.kp_last[changed], self.b_last[changed] = self.kp[changed], self.b[changed]
        np.multiply(self.kp, ep, out=P)
        D *= self.ad                           # td = 0: a_d = b_d = 0, so D = 0
        np.subtract(ed, self.e_prev, out=t)
        t *= self.bd
        D += t
        self.e_prev[:] = ed
        np.add(P, I, out=v)
        v += D
        v += self.ff
        a = np.clip(v, self.umin, self.umax, out=ep)      # ep is free from here on
        np.subtract(u, self.rdt, out=t)
        np.maximum(a, t, out=a)
        np.add(u, self.rdt, out=t)
        np.minimum(a, t, out=a)
        # auto: I += k_i (sp - pv) + k_t (a - v)
        np.subtract(sp, pv, out=t)
        t *= self.ki
        I += t
        np.subtract(a, v, out=t)
        t *= self.kt
        I += t
        manual = self.mode == MANUAL
        held = self.held != 0
        tracking = manual | held
        if tracking.any():                    # loops in manual or held: rare
            a[held] = self.u_track[held]
            a[manual] = np.clip(self.u_man, self.umin, self.umax)[manual]
            I[tracking] = (a - P - D - self.ff)[tracking]
            self.u_man[~tracking] = a[~tracking]
        else:
            self.u_man[:] = a
        u[:] = a
        return u
