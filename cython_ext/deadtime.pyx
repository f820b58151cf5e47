# cython: language_level=3
"""Dead time: a ring-buffer delay line with a variable delay, and a Smith predictor.

DelayLine(n, max_delay_s, dt_s).step(x, delay_s) returns x(t - delay) per channel,
interpolating linearly between samples, so the delay can change smoothly with
load (an analyzer's transport delay does). Before the line has filled, the
oldest sample stands in (the line starts filled with `initial`).

SmithPredictor(n, dt_s, max_delay_s) holds a FOPDT model per channel (gain k,
lag tau_s, dead time theta_s; the arrays are writable between steps) and turns
the measured pv into the delay-free prediction the PID should see:
    ym  = a ym + k (1 - a) u_prev        (a = exp(-dt / tau), exact ZOH)
    pv' = pv + ym - ym(t - theta)
Call step(u_prev, pv) once per sample with the output applied during the last
sample; it returns pv'. With a perfect model pv' is the undelayed process output.
"""

cimport cython
from libc.math cimport exp, floor

import numpy as np

include "_check.pxi"


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)
cdef inline double _read(double[:, ::1] buf, Py_ssize_t m, Py_ssize_t pos, Py_ssize_t i,
                         double k) noexcept nogil:
    # buf[pos] holds the newest sample; k samples back, fractional.
    cdef Py_ssize_t k0 = <Py_ssize_t>floor(k)
    cdef double f = k - k0
    cdef Py_ssize_t j0 = (pos - k0) % m
    cdef Py_ssize_t j1 = (pos - k0 - 1) % m
    if j0 < 0:
        j0 += m
    if j1 < 0:
        j1 += m
    if f == 0.0:
        return buf[j0, i]
    return (1.0 - f) * buf[j0, i] + f * buf[j1, i]


cdef class DelayLine:
    cdef double[:, ::1] _buf
    cdef double[::1] _y
    cdef double dt, max_delay
    cdef Py_ssize_t m, pos
    cdef readonly object y
    cdef readonly Py_ssize_t n

    def __init__(self, Py_ssize_t n, max_delay_s, dt_s, initial=0.0):
        self.n = n
        self.dt = _pos("dt_s", dt_s)
        self.max_delay = float(max_delay_s)
        if not self.max_delay >= 0:
            raise ValueError("max_delay_s = %r: must be >= 0" % max_delay_s)
        self.m = int(floor(self.max_delay / self.dt)) + 2
        self._buf = np.full((self.m, n), float(initial))
        self.pos = 0
        self.y = np.zeros(n)
        self._y = self.y

    def get_state(self):
        """What a restart needs (the host persists it): buffer, position, output."""
        return {"buf": np.asarray(self._buf).tolist(), "pos": int(self.pos),
                "y": self.y.tolist()}

    def set_state(self, state):
        buf = np.asarray(state["buf"], dtype=np.float64)
        if buf.shape != (self.m, self.n):
            raise ValueError("delay line state of shape %s, expected %s"
                             % (buf.shape, (self.m, self.n)))
        np.asarray(self._buf)[...] = buf
        self.pos = int(state["pos"]) % self.m
        self.y[...] = state["y"]

    @cython.boundscheck(False)
    @cython.wraparound(False)
    @cython.cdivision(True)
    def step(self, x, delay_s):
        cdef double[::1] xv = _vec("x", x, self.n)
        cdef double[::1] dv = _vec("delay_s", delay_s, self.n)
        cdef Py_ssize_t i
        for i in range(self.n):
            if not (0.0 <= dv[i] <= self.max_delay):
                raise ValueError("delay_s[%d] = %r outside 0..%r" % (i, dv[i], self.max_delay))
        with nogil:
            self.pos = (self.pos + 1) % self.m
            for i in range(self.n):
                self._buf[self.pos, i] = xv[i]
                self._y[i] = _read(self._buf, self.m, self.pos, i, dv[i] / self.dt)
        return self.y


cdef class SmithPredictor:
    cdef double dt
    cdef double[::1] _ym, _k, _tau, _theta, _y
    cdef DelayLine line
    cdef readonly object k, tau_s, theta_s, y, ym
    cdef readonly Py_ssize_t n

    def __init__(self, Py_ssize_t n, dt_s, max_delay_s, k=1.0, tau_s=1.0, theta_s=0.0):
        self.n = n
        self.dt = _pos("dt_s", dt_s)
        self.k = np.full(n, float(k))
        self.tau_s = np.full(n, float(tau_s))
        self.theta_s = np.full(n, float(theta_s))
        self._k = self.k
        self._tau = self.tau_s
        self._theta = self.theta_s
        self.ym = np.zeros(n)
        self._ym = self.ym
        self.y = np.zeros(n)
        self._y = self.y
        self.line = DelayLine(n, max_delay_s, dt_s)

    def get_state(self):
        return {"ym": self.ym.tolist(), "y": self.y.tolist(), "line": self.line.get_state()}

    def set_state(self, state):
        self.line.set_state(state["line"])
        self.ym[...] = state["ym"]
        self.y[...] = state["y"]

    @cython.boundscheck(False)
    @cython.wraparound(False)
    @cython.cdivision(True)
    def step(self, u_prev, pv):
        cdef double[::1] uv = _vec("u_prev", u_prev, self.n)
        cdef double[::1] pvv = _vec("pv", pv, self.n)
        cdef Py_ssize_t i
        cdef double a
        for i in range(self.n):
            if not self._tau[i] > 0:
                raise ValueError("tau_s[%d] = %r: must be > 0" % (i, self._tau[i]))
        for i in range(self.n):
            a = exp(-self.dt / self._tau[i])
            self._ym[i] = a * self._ym[i] + self._k[i] * (1.0 - a) * uv[i]
        ymd = self.line.step(self.ym, self.theta_s)
        cdef double[::1] ymdv = ymd
        for i in range(self.n):
            self._y[i] = pvv[i] + self._ym[i] - ymdv[i]
        return self.y
