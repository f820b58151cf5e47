# cython: language_level=3
"""PID bank: N independent ISA (parallel) PID loops stepped in one call.

Design (layers, top to bottom):
- PidBank, a Python class owning struct-of-arrays numpy buffers (float64, int8):
  tunings and limits (read-only views: set them with configure(), which validates
  and raises ValueError naming the loop and the value), inputs the caller writes
  in place (sp, pv, ff, u_man, u_track, mode, held), outputs and state. Inside,
  configure() derives a per-loop coefficient block (one cache line per loop:
  no division and few live pointers in the hot loop).
- _step_all(): one nogil loop over the loops that are due.
- _step_one(): the per-loop law, inline, no Python objects.

Per loop, each sample (dt_s seconds, its own rate: step(now_s) runs only the loops
that are due, keeping each loop's schedule without drift):
  P = kp (b sp - pv)
  D = tf/(tf+dt) D + kp td/(tf+dt) ((c sp - pv) - previous)   (filtered, N = td/tf)
  v = P + I + D + ff                                          (feedforward before limits)
  auto:   u = clamp(v, umin, umax), then |u - previous u| <= rate dt
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


# Per-loop blocks, one cache line each (array of structs inside the kernel):
# K: derived coefficients, refreshed by configure(); S: dynamic state.
cdef enum:
    K_KP = 0
    K_B = 1
    K_C = 2
    K_UMIN = 3
    K_UMAX = 4
    K_RDT = 5       # rate dt: largest output move per sample (+inf: none)
    K_AD = 6        # tf / (tf + dt): derivative filter pole (0 when td = 0)
    K_BD = 7        # kp td / (tf + dt): derivative gain
    K_KI = 8        # kp dt / ti: integral gain per sample
    K_KT = 9        # dt / tt: back-calculation gain per sample
    K_DT = 10
    K_W = 11
    S_I = 0
    S_D = 1
    S_EPREV = 2
    S_KPLAST = 3
    S_BLAST = 4
    S_INIT = 5
    S_W = 6


cdef struct Rows:
    # Raw pointers taken once at construction: few enough to stay in registers.
    double* K
    double* S
    double* sp
    double* pv
    double* ff
    double* u_man
    double* u_track
    double* t_next
    signed char* mode
    signed char* held
    double* u


cdef inline double _clamp(double x, double lo, double hi) noexcept nogil:
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


cdef inline void _step_one(Py_ssize_t i, Rows* r) noexcept nogil:
    cdef double* k = r.K + i * K_W
    cdef double* st = r.S + i * S_W
    cdef double kp = k[K_KP], b = k[K_B]
    cdef double sp = r.sp[i], pv = r.pv[i], ff = r.ff[i]
    cdef double I = st[S_I], D = st[S_D]
    cdef double e_p = b * sp - pv
    cdef double e_d = k[K_C] * sp - pv
    cdef double P, v, a, umin = k[K_UMIN], umax = k[K_UMAX], du
    if st[S_INIT] == 0.0:
        st[S_EPREV] = e_d
        r.u[i] = _clamp(r.u_man[i], umin, umax)
        st[S_KPLAST] = kp
        st[S_BLAST] = b
        st[S_INIT] = 1.0
        D = 0.0
    if kp != st[S_KPLAST] or b != st[S_BLAST]:
        I += st[S_KPLAST] * (st[S_BLAST] * sp - pv) - kp * e_p
        st[S_KPLAST] = kp
        st[S_BLAST] = b
    P = kp * e_p
    if k[K_AD] != 0.0 or k[K_BD] != 0.0:
        D = k[K_AD] * D + k[K_BD] * (e_d - st[S_EPREV])
    else:
        D = 0.0
    st[S_EPREV] = e_d
    v = P + I + D + ff
    if r.mode[i] == MANUAL:
        a = _clamp(r.u_man[i], umin, umax)
        I = a - P - D - ff
    elif r.held[i]:
        a = r.u_track[i]
        I = a - P - D - ff
    else:
        a = _clamp(v, umin, umax)
        du = k[K_RDT]  # +inf when there is no rate limit: the clamp is then a no-op
        a = _clamp(a, r.u[i] - du, r.u[i] + du)
        I += k[K_KI] * (sp - pv) + k[K_KT] * (a - v)
        r.u_man[i] = a
    st[S_I] = I
    st[S_D] = D
    r.u[i] = a  # also the previous output for the next rate limit


cdef Py_ssize_t _step_all(double now, bint timed, Py_ssize_t n, Rows* r) noexcept nogil:
    cdef Py_ssize_t i, stepped = 0
    cdef double dt
    if not timed:
        for i in range(n):
            _step_one(i, r)
        return n
    for i in range(n):
        if isnan(r.t_next[i]):
            r.t_next[i] = now
        if now < r.t_next[i] - 1e-9:
            continue
        dt = r.K[i * K_W + K_DT]
        r.t_next[i] += dt
        if r.t_next[i] <= now:  # fell behind by a whole period: do not burst
            r.t_next[i] = now + dt
        _step_one(i, r)
        stepped += 1
    return stepped


def _check_finite(name, arr):
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError("%s[%d] = %r: must be finite" % (name, bad[0], float(arr[bad[0]])))


cdef class PidBank:
    """N PID loops. See the module docstring for the law and the units."""

    cdef double[:, ::1] _x
    cdef double[:, ::1] _K
    cdef double[:, ::1] _S
    cdef double[::1] _t_next
    cdef double[::1] _u
    cdef signed char[::1] _mode
    cdef signed char[::1] _held
    cdef Rows rows
    cdef readonly object params, inputs, state, t_next, u, mode, held, _Kblock, _Sblock
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
        self._Kblock = np.zeros((n, K_W))
        self._Sblock = np.zeros((n, S_W))
        self.inputs = np.zeros((len(INPUTS), n))
        # State rows as a (6, n) view: I, D, previous e_d, last kp, last b, init flag.
        self.state = self._Sblock.T[:6]
        self.t_next = np.full(n, np.nan)
        self.u = np.zeros(n)
        self.mode = np.full(n, AUTO, dtype=np.int8)
        self.held = np.zeros(n, dtype=np.int8)
        self._x = self.inputs
        self._K = self._Kblock
        self._S = self._Sblock
        self._t_next = self.t_next
        self._u = self.u
        self._mode = self.mode
        self._held = self.held
        self._derive()
        self._bind()
        self.params.flags.writeable = False  # tunings change only through configure()

    def _derive(self):
        g = {k: self.params[PARAMS.index(k)] for k in PARAMS}
        K = self._Kblock
        K[:, K_KP] = g["kp"]
        K[:, K_B] = g["b"]
        K[:, K_C] = g["c"]
        K[:, K_UMIN] = g["umin"]
        K[:, K_UMAX] = g["umax"]
        K[:, K_RDT] = g["rate"] * g["dt"]
        # No derivative action (td = 0): no filter either, the D state resets.
        # With td > 0 the filter runs even at kp = 0, so a gain rewrite to zero
        # lets the D term decay instead of dropping it (no bump).
        K[:, K_AD] = np.where(g["td"] > 0, g["tf"] / (g["tf"] + g["dt"]), 0.0)
        K[:, K_BD] = g["kp"] * g["td"] / (g["tf"] + g["dt"])
        K[:, K_KI] = g["kp"] * g["dt"] / g["ti"]
        K[:, K_KT] = g["dt"] / g["tt"]
        K[:, K_DT] = g["dt"]

    cdef void _bind(self):
        cdef Rows* r = &self.rows
        r.K = &self._K[0, 0]
        r.S = &self._S[0, 0]
        r.sp = &self._x[0, 0]
        r.pv = &self._x[1, 0]
        r.ff = &self._x[2, 0]
        r.u_man = &self._x[3, 0]
        r.u_track = &self._x[4, 0]
        r.t_next = &self._t_next[0]
        r.mode = &self._mode[0]
        r.held = &self._held[0]
        r.u = &self._u[0]

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
        self._derive()

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
        if self.n < 64:  # releasing the GIL costs more than a few loops
            return _step_all(now, timed, self.n, &self.rows)
        with nogil:
            k = _step_all(now, timed, self.n, &self.rows)
        return k

    def reset(self):
        """Forget the dynamic state (next step re-initialises without a kick)."""
        self._Sblock[...] = 0.0
        self.t_next[...] = np.nan
