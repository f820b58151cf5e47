# cython: language_level=3
"""Signal blocks over N channels: lag, lead-lag, rate limiter, moving average,
rolling and clock-aligned hourly means, median-of-3 spike filter, hysteresis.

Design: each block is a cdef class owning its state and its output vector `y`
(allocated once); step(x) validates x (float64, shape (n,)) in the wrapper and
runs a nogil loop over the channels, writing y in place and returning it.
Discretisations are exact for piecewise-constant input (zero-order hold), so a
step response matches the continuous one at every sample.
"""

cimport cython
from libc.math cimport exp, floor

import numpy as np

include "_check.pxi"


cdef class Lag:
    """First-order lag 1/(tau s + 1), exact ZOH: y = a y + (1 - a) x, a = exp(-dt/tau)."""
    cdef double a
    cdef double[::1] _y
    cdef readonly object y
    cdef readonly Py_ssize_t n

    def __init__(self, Py_ssize_t n, tau_s, dt_s, initial=0.0):
        self.n = n
        self.a = exp(-_pos("dt_s", dt_s) / _pos("tau_s", tau_s))
        self.y = np.full(n, float(initial))
        self._y = self.y

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def step(self, x):
        cdef double[::1] xv = _vec("x", x, self.n)
        cdef Py_ssize_t i
        cdef double a = self.a
        with nogil:
            for i in range(self.n):
                self._y[i] = a * self._y[i] + (1.0 - a) * xv[i]
        return self.y


cdef class LeadLag:
    """(lead s + 1)/(lag s + 1) = lead/lag + (1 - lead/lag)/(lag s + 1), exact ZOH."""
    cdef double a, r
    cdef double[::1] _z, _y
    cdef readonly object y
    cdef readonly Py_ssize_t n

    def __init__(self, Py_ssize_t n, lead_s, lag_s, dt_s, initial=0.0):
        self.n = n
        lead = float(lead_s)
        if not lead >= 0:
            raise ValueError("lead_s = %r: must be >= 0" % lead)
        self.r = lead / _pos("lag_s", lag_s)
        self.a = exp(-_pos("dt_s", dt_s) / float(lag_s))
        self._z = np.full(n, float(initial))
        self.y = np.full(n, float(initial))
        self._y = self.y

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def step(self, x):
        cdef double[::1] xv = _vec("x", x, self.n)
        cdef Py_ssize_t i
        with nogil:
            for i in range(self.n):
                self._z[i] = self.a * self._z[i] + (1.0 - self.a) * xv[i]
                self._y[i] = self.r * xv[i] + (1.0 - self.r) * self._z[i]
        return self.y


cdef class RateLimiter:
    """y follows x with |dy/dt| <= rate (per second)."""
    cdef double step_max
    cdef double[::1] _y
    cdef readonly object y
    cdef readonly Py_ssize_t n

    def __init__(self, Py_ssize_t n, rate_per_s, dt_s, initial=0.0):
        self.n = n
        self.step_max = _pos("rate_per_s", rate_per_s) * _pos("dt_s", dt_s)
        self.y = np.full(n, float(initial))
        self._y = self.y

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def step(self, x):
        cdef double[::1] xv = _vec("x", x, self.n)
        cdef Py_ssize_t i
        cdef double d
        with nogil:
            for i in range(self.n):
                d = xv[i] - self._y[i]
                if d > self.step_max:
                    d = self.step_max
                elif d < -self.step_max:
                    d = -self.step_max
                self._y[i] = self._y[i] + d
        return self.y


cdef class MovingAverage:
    """Mean of the last `window` samples per channel (fewer until the window fills).

    Running sum with a full re-summation once per window, so rounding error never
    accumulates however long it runs.
    """
    cdef double[:, ::1] _buf
    cdef double[::1] _sum, _y
    cdef Py_ssize_t w, pos, count, since
    cdef readonly object y
    cdef readonly Py_ssize_t n

    def __init__(self, Py_ssize_t n, Py_ssize_t window):
        if window < 1:
            raise ValueError("window = %r: must be >= 1 sample" % window)
        self.n = n
        self.w = window
        self._buf = np.zeros((window, n))
        self._sum = np.zeros(n)
        self.y = np.zeros(n)
        self._y = self.y
        self.pos = 0
        self.count = 0
        self.since = 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    @cython.cdivision(True)
    def step(self, x):
        cdef double[::1] xv = _vec("x", x, self.n)
        cdef Py_ssize_t i, k
        cdef double acc
        with nogil:
            for i in range(self.n):
                self._sum[i] += xv[i] - self._buf[self.pos, i]
                self._buf[self.pos, i] = xv[i]
            self.pos = (self.pos + 1) % self.w
            if self.count < self.w:
                self.count += 1
            self.since += 1
            if self.since >= self.w:
                self.since = 0
                for i in range(self.n):
                    acc = 0.0
                    for k in range(self.w):
                        acc += self._buf[k, i]
                    self._sum[i] = acc
            for i in range(self.n):
                self._y[i] = self._sum[i] / self.count
        return self.y


def RollingMean(Py_ssize_t n, window_s, dt_s):
    """Sliding mean over the last window_s seconds of samples taken every dt_s."""
    w = int(round(_pos("window_s", window_s) / _pos("dt_s", dt_s)))
    if abs(w * float(dt_s) - float(window_s)) > 1e-9 * float(window_s):
        raise ValueError("window_s = %r is not a whole number of dt_s = %r" % (window_s, dt_s))
    return MovingAverage(n, w)


cdef class HourlyMean:
    """Time-weighted means over clock-aligned bins (default 3600 s: emission hours).

    add(t0_s, t1_s, x, valid): x held over [t0, t1) counts toward the bins it
    overlaps, split exactly at bin boundaries; invalid channels add time to the
    bin but no value (their valid fraction drops). A bin closes when time passes
    its end: closed bins are appended to `closed` as (bin_start_s, means, valid_fraction).
    """
    cdef double period, bin_start
    cdef double[::1] _sum, _valid
    cdef readonly list closed
    cdef readonly Py_ssize_t n

    def __init__(self, Py_ssize_t n, period_s=3600.0):
        self.n = n
        self.period = _pos("period_s", period_s)
        self._sum = np.zeros(n)
        self._valid = np.zeros(n)
        self.bin_start = float("nan")
        self.closed = []

    def _close(self):
        valid = np.asarray(self._valid).copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(valid > 0, np.asarray(self._sum) / np.where(valid > 0, valid, 1), np.nan)
        self.closed.append((self.bin_start, means, valid / self.period))
        self._sum[:] = 0.0
        self._valid[:] = 0.0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def add(self, double t0_s, double t1_s, x, valid=None):
        cdef double[::1] xv = _vec("x", x, self.n)
        cdef signed char[::1] ok
        cdef Py_ssize_t i
        cdef double a, b, end
        if not t1_s >= t0_s:
            raise ValueError("interval [%r, %r) runs backwards" % (t0_s, t1_s))
        if valid is None:
            ok = np.ones(self.n, dtype=np.int8)
        else:
            ok = np.asarray(valid, dtype=np.int8)
            if ok.shape[0] != self.n:
                raise ValueError("valid: length %d, expected %d" % (ok.shape[0], self.n))
        if self.bin_start != self.bin_start:  # first sample: open its bin
            self.bin_start = floor(t0_s / self.period) * self.period
        elif t0_s < self.bin_start:
            raise ValueError("t0_s = %r is before the open bin at %r" % (t0_s, self.bin_start))
        a = t0_s
        while True:
            end = self.bin_start + self.period
            b = t1_s if t1_s < end else end
            if b > a:
                for i in range(self.n):
                    if ok[i]:
                        self._sum[i] += xv[i] * (b - a)
                        self._valid[i] += b - a
            if t1_s < end:
                break
            self._close()
            self.bin_start = end
            a = end
            if t1_s == end:
                break

    def current(self):
        """(bin_start_s, partial means so far, valid seconds so far) of the open bin."""
        valid = np.asarray(self._valid).copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(valid > 0, np.asarray(self._sum) / np.where(valid > 0, valid, 1), np.nan)
        return self.bin_start, means, valid


cdef class Median3:
    """Median of the last three samples: removes single-sample spikes."""
    cdef double[:, ::1] _h
    cdef double[::1] _y
    cdef Py_ssize_t count
    cdef readonly object y
    cdef readonly Py_ssize_t n

    def __init__(self, Py_ssize_t n):
        self.n = n
        self._h = np.zeros((3, n))
        self.y = np.zeros(n)
        self._y = self.y
        self.count = 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def step(self, x):
        cdef double[::1] xv = _vec("x", x, self.n)
        cdef Py_ssize_t i
        cdef double a, b, c
        with nogil:
            for i in range(self.n):
                self._h[0, i] = self._h[1, i]
                self._h[1, i] = self._h[2, i]
                self._h[2, i] = xv[i]
                if self.count < 2:
                    # Not enough history yet: pass the sample through.
                    self._y[i] = xv[i]
                    continue
                a = self._h[0, i]
                b = self._h[1, i]
                c = self._h[2, i]
                if a > b:
                    a, b = b, a
                if b > c:
                    b = c
                self._y[i] = a if a > b else b
            if self.count < 2:
                self.count += 1
        return self.y


cdef class Hysteresis:
    """On when x >= on_at, off when x <= off_at (off_at < on_at); holds between."""
    cdef double on_at, off_at
    cdef signed char[::1] _y
    cdef readonly object y
    cdef readonly Py_ssize_t n

    def __init__(self, Py_ssize_t n, on_at, off_at, initial=False):
        if not float(off_at) < float(on_at):
            raise ValueError("off_at = %r must be below on_at = %r" % (off_at, on_at))
        self.n = n
        self.on_at = on_at
        self.off_at = off_at
        self.y = np.full(n, 1 if initial else 0, dtype=np.int8)
        self._y = self.y

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def step(self, x):
        cdef double[::1] xv = _vec("x", x, self.n)
        cdef Py_ssize_t i
        with nogil:
            for i in range(self.n):
                if xv[i] >= self.on_at:
                    self._y[i] = 1
                elif xv[i] <= self.off_at:
                    self._y[i] = 0
        return self.y
