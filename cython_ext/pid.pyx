# cython: language_level=3
"""PID bank: N independent ISA (parallel) PID loops stepped in one call.

Design (layers, top to bottom):
- PidBank, a Python class owning struct-of-arrays numpy buffers (float64, int8):
  tunings and limits (read-only views: set them with configure(), which validates
  and raises ValueError naming the loop and the value), inputs the caller writes
  in place (sp, pv, ff, u_man, u_track, mode, held), outputs and state.
- _step_all(): one nogil loop over the loops that are due.
- _step_one(): the per-loop law, inline, no Python objects.

Per loop, each sample (dt_s seconds, its own rate: step(now_s) runs only the loops
that are due, keeping each loop's schedule without drift):
  P = kp (b sp - pv)
  D = tf/(tf+dt) D + kp td/(tf+dt) ((c sp - pv) - previous)   (filtered, N = td/tf)
  v = P + I + D + ff                                          (feedforward before limits)
  auto:   u = clamp(v, umin, umax), then |u - u_prev| <= rate dt
          I += kp dt/ti (sp - pv) + dt/tt (u - v)             (back-calculation)
          u_man <- u                                          (manual starts from here)
  manual: u = clamp(u_man, umin, umax); I = u - P - D - ff    (tracking: bumpless back)
  held:   u = u_track (the device holds the actuator: no integration, I tracks it)
Gain scheduling: writing new kp or b between steps moves I so that v is unchanged
for the current inputs: no bump. ti = inf disables integral action, td = 0 the
derivative, tt = inf the back-calculation, rate = inf the rate limit.
"""

cimport cython
from libc.math cimport INFINITY, isfinite, isnan

import numpy as np

cdef enum:
    MANUAL = 0
    AUTO = 1

PARAMS = ("kp", "ti", "td", "tf", "b", "c", "tt", "umin", "umax", "rate", "dt")
INPUTS = ("sp", "pv", "ff", "u_man", "u_track")


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline double _clamp(double x, double lo, double hi) noexcept nogil:
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)
cdef void _step_one(Py_ssize_t i, double[:, ::1] p, double[:, ::1] x,
                    double[:, ::1] s, signed char[::1] mode, signed char[::1] held,
                    double[::1] u) noexcept nogil:
    cdef double kp = p[0, i], ti = p[1, i], td = p[2, i], tf = p[3, i]
    cdef double b = p[4, i], c = p[5, i], tt = p[6, i]
    cdef double umin = p[7, i], umax = p[8, i], rate = p[9, i], dt = p[10, i]
    cdef double sp = x[0, i], pv = x[1, i], ff = x[2, i]
    # state rows: 0 I, 1 D, 2 e_d previous, 3 u previous, 4 kp last, 5 b last, 6 init
    cdef double I = s[0, i], D = s[1, i]
    cdef double e_p = b * sp - pv
    cdef double e_d = c * sp - pv
    cdef double P, v, a, lo, hi
    if s[6, i] == 0.0:
        s[2, i] = e_d
        s[3, i] = _clamp(x[3, i], umin, umax)
        s[4, i] = kp
        s[5, i] = b
        s[6, i] = 1.0
        D = 0.0
    if kp != s[4, i] or b != s[5, i]:
        I += s[4, i] * (s[5, i] * sp - pv) - kp * e_p
        s[4, i] = kp
        s[5, i] = b
    P = kp * e_p
    if td > 0.0:
        D = (tf / (tf + dt)) * D + (kp * td / (tf + dt)) * (e_d - s[2, i])
    else:
        D = 0.0
    s[2, i] = e_d
    v = P + I + D + ff
    if mode[i] == MANUAL:
        a = _clamp(x[3, i], umin, umax)
        I = a - P - D - ff
    elif held[i]:
        a = x[4, i]
        I = a - P - D - ff
    else:
        a = _clamp(v, umin, umax)
        if isfinite(rate):
            lo = s[3, i] - rate * dt
            hi = s[3, i] + rate * dt
            a = _clamp(a, lo, hi)
        I += kp * dt / ti * (sp - pv) + dt / tt * (a - v)
        x[3, i] = a
    s[0, i] = I
    s[1, i] = D
    s[3, i] = a
    u[i] = a


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _step_all(double now, bint timed, double[:, ::1] p, double[:, ::1] x,
                          double[:, ::1] s, double[::1] t_next, signed char[::1] mode,
                          signed char[::1] held, double[::1] u) noexcept nogil:
    cdef Py_ssize_t i, n = u.shape[0], stepped = 0
    cdef double dt
    for i in range(n):
        if timed:
            if isnan(t_next[i]):
                t_next[i] = now
            if now < t_next[i] - 1e-9:
                continue
            dt = p[10, i]
            t_next[i] += dt
            if t_next[i] <= now:  # fell behind by a whole period: do not burst
                t_next[i] = now + dt
        _step_one(i, p, x, s, mode, held, u)
        stepped += 1
    return stepped


def _check_finite(name, arr):
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError("%s[%d] = %r: must be finite" % (name, bad[0], float(arr[bad[0]])))


cdef class PidBank:
    """N PID loops. See the module docstring for the law and the units."""

    cdef double[:, ::1] _p
    cdef double[:, ::1] _x
    cdef double[:, ::1] _s
    cdef double[::1] _t_next
    cdef double[::1] _u
    cdef signed char[::1] _mode
    cdef signed char[::1] _held
    cdef readonly object params, inputs, state, t_next, u, mode, held
    cdef readonly Py_ssize_t n

    def __init__(self, Py_ssize_t n):
        if n < 1:
            raise ValueError("a PID bank needs at least one loop, got n=%d" % n)
        self.n = n
        self.params = np.zeros((len(PARAMS), n))
        defaults = dict(kp=1.0, ti=INFINITY, td=0.0, tf=1.0, b=1.0, c=0.0, tt=INFINITY,
                        umin=-INFINITY, umax=INFINITY, rate=INFINITY, dt=1.0)
        for k, name in enumerate(PARAMS):
            self.params[k] = defaults[name]
        self.inputs = np.zeros((len(INPUTS), n))
        self.state = np.zeros((7, n))
        self.t_next = np.full(n, np.nan)
        self.u = np.zeros(n)
        self.mode = np.full(n, AUTO, dtype=np.int8)
        self.held = np.zeros(n, dtype=np.int8)
        self._p = self.params
        self._x = self.inputs
        self._s = self.state
        self._t_next = self.t_next
        self._u = self.u
        self._mode = self.mode
        self._held = self.held
        self.params.flags.writeable = False  # tunings change only through configure()

    # Inputs, written in place by the caller: bank.sp[i] = ..., bank.pv[:] = ...
    @property
    def sp(self):
        return self.inputs[0]

    @property
    def pv(self):
        return self.inputs[1]

    @property
    def ff(self):
        return self.inputs[2]

    @property
    def u_man(self):
        return self.inputs[3]

    @property
    def u_track(self):
        return self.inputs[4]

    @property
    def integral(self):
        return self.state[0]

    def param(self, name):
        """Read-only view of one tuning row (e.g. bank.param('kp'))."""
        return self.params[PARAMS.index(name)]

    def configure(self, idx=None, **values):
        """Set tunings/limits for loops idx (all if None); validated before any is stored.

        Raises ValueError naming the parameter, the loop and the value for NaN or
        infinite gains, ti <= 0, td < 0, tf <= 0, tt <= 0, umin > umax, rate <= 0,
        dt <= 0, or an unknown name. A bad call changes nothing.
        """
        for k in values:
            if k not in PARAMS:
                raise ValueError("unknown PID parameter %r (known: %s)" % (k, ", ".join(PARAMS)))
        sel = slice(None) if idx is None else idx
        new = np.array(self.params, copy=True)
        for k, v in values.items():
            row = new[PARAMS.index(k)]
            try:
                row[sel] = v
            except (ValueError, IndexError) as e:
                raise ValueError("%s: cannot set loops %r to %r (%s)" % (k, idx, v, e))
        names = dict(zip(PARAMS, new))
        for k in ("kp", "b", "c", "td"):
            _check_finite(k, names[k])
        for k, lo_ok in (("ti", "> 0"), ("tt", "> 0"), ("rate", "> 0"), ("dt", "> 0"),
                         ("tf", "> 0")):
            arr = names[k]
            bad = np.flatnonzero(np.isnan(arr) | (arr <= 0))
            if bad.size:
                raise ValueError("%s[%d] = %r: must be %s" % (k, bad[0], float(arr[bad[0]]), lo_ok))
        if np.any(names["td"] < 0):
            i = int(np.flatnonzero(names["td"] < 0)[0])
            raise ValueError("td[%d] = %r: must be >= 0" % (i, float(names["td"][i])))
        for k in ("umin", "umax"):
            bad = np.flatnonzero(np.isnan(names[k]))
            if bad.size:
                raise ValueError("%s[%d] is NaN" % (k, bad[0]))
        bad = np.flatnonzero(names["umin"] > names["umax"])
        if bad.size:
            i = int(bad[0])
            raise ValueError("umin[%d] = %r > umax[%d] = %r" % (i, float(names["umin"][i]), i,
                                                              float(names["umax"][i])))
        self.params.flags.writeable = True
        self.params[...] = new
        self.params.flags.writeable = False

    def set_mode(self, idx, auto):
        """Auto (True) or manual (False) for loops idx; transfer is bumpless both ways."""
        self.mode[idx] = AUTO if auto else MANUAL

    def step(self, now_s=None):
        """Run every loop once (now_s None), or the loops due at now_s. Returns the count."""
        cdef double now = 0.0
        cdef bint timed = now_s is not None
        cdef Py_ssize_t k
        if timed:
            now = now_s
            if isnan(now):
                raise ValueError("now_s is NaN")
        with nogil:
            k = _step_all(now, timed, self._p, self._x, self._s, self._t_next,
                          self._mode, self._held, self._u)
        return k

    def reset(self):
        """Forget the dynamic state (next step re-initialises without a kick)."""
        self.state[...] = 0.0
        self.t_next[...] = np.nan
