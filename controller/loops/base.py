"""The loop interface shared by baselines, optimised strategies and the service.

A strategy is called once per cycle with the time and a frozen snapshot
{device: {point: value}} (plus "process" for setpoints from the process) and
returns the commands {device: {point: value}}. It never touches the bus.
Missing or NaN inputs are the strategy's to handle: each defines its fallback.
plant_options lets a baseline describe the plant it runs on (a damper train
without a VFD, say), so both runs share one plant model.
"""

import math


class Strategy:
    plant_options = {}
    period_s = 1.0
    PARAMS = ()  # tuning names a loop's config may set (besides period_s)
    # Plant data the strategy is configured with (its nominal constants, from
    # the loop's params): param name -> (class attribute, lowest, highest).
    # The simulator may differ from them; a strategy never reads the plant's own.
    PLANT = {}
    # Attributes that come from the config and are never taken from saved
    # state (a changed config wins over the state file on restart).
    CONFIG = ("period_s",)
    MAX_GAP_PERIODS = 10  # a longer gap between runs is an outage, not a slow line
    # Outputs that come from a PI (bumpless manual -> auto, IEC 61131 tracking):
    # (role, point) -> (PidBank attribute, output units per unit of the PI's
    # output: a number, or the name of an attribute that holds it).
    TRACK = {}

    def __init__(self, params=None):
        self.params = dict(params or {})
        # A loop group may run a strategy faster or slower than its design
        # period (drives at 100 ms): its kernels are configured with this one.
        self.period_s = float(self.params.get("period_s", self.period_s))
        for name, (attr, lo, hi) in self.PLANT.items():
            if name in self.params:
                v = float(self.params[name])
                if not lo <= v <= hi:
                    raise ValueError("%s = %r: expected %g to %g" % (name, v, lo, hi))
                setattr(self, attr, v)
        self._t_prev = None  # plant time of the last run (not persisted: a restart starts afresh)

    def tick(self, t_s):
        """Seconds (plant time) since the previous run: the period on the first.

        The service runs a loop only on fresh measurements, so on a busy line
        one run can span several periods (a poll round of a shared RS-485 line
        is ~6 plant-seconds at 60x); integrators, filters and models must move
        over the time that passed, not over one period. Clamped to
        MAX_GAP_PERIODS periods: a longer gap is an outage the loop's own
        fallback answers. A gap within 1e-6 of the period is the period (a
        model-in-the-loop run is exact)."""
        last, self._t_prev = self._t_prev, t_s
        if last is None:
            return self.period_s
        dt = min(max(t_s - last, 1e-3 * self.period_s), self.MAX_GAP_PERIODS * self.period_s)
        return self.period_s if abs(dt - self.period_s) <= 1e-6 * self.period_s else dt

    def run(self, t_s, snap):
        raise NotImplementedError

    def resume(self, t_s):
        """Manual -> auto, before the first run back: forget what the strategy
        inferred from the plant before manual that the operator may have
        changed since (a strategy with such history overrides this)."""

    def pi_integrals(self):
        """The integrals of the PIs behind TRACK outputs {attribute: value}
        (taken when a loop goes back to auto: they have not moved in manual)."""
        return {attr: float(getattr(self, attr).integral[0]) for attr, _ in self.TRACK.values()
                if getattr(self, attr, None) is not None}

    def track(self, out, present, integrals):
        """Manual -> auto, on the first run back (IEC 61131 PID tracking): each
        PI behind a TRACK output takes its integral from the output the plant
        has now (present: {role: {point: value}}, the operator's last), with
        the present error, not from what it held before manual. out is this
        run's commands, computed from the stale integral (integrals: its value
        before this run, so the run's integration over the manual period is
        dropped too); the integral and the PI's output move by the difference,
        and from here on the strategy continues from the present output.
        Returns {(role, point): shift in output units} of what it tracked."""
        done = {}
        for (role, point), (attr, gain) in self.TRACK.items():
            have = (present.get(role) or {}).get(point)
            got = (out.get(role) or {}).get(point)
            pid = getattr(self, attr, None)
            g = float(getattr(self, gain) if isinstance(gain, str) else gain)
            if pid is None or attr not in integrals or not good(have) or not good(got) \
                    or not good(g) or g == 0:
                continue
            du = (have - got) / g
            pid.integral[0] = integrals[attr] + du
            pid.u[0] = min(max(pid.u[0] + du, pid.param("umin")[0]), pid.param("umax")[0])
            pid.u_man[0] = pid.u[0]
            out[role][point] = have
            done[(role, point)] = have - got
        return done


def good(x):
    """A usable number: not None, not NaN, not +-inf (numpy scalars included)."""
    try:
        return x is not None and not isinstance(x, (bool, str)) and math.isfinite(x)
    except TypeError:
        return False


class Plausible:
    """A measured input's checks before a loop may use it (docs/safety.md):

    - finite, and inside the plausibility range [lo, hi]: a reading at the top
      or bottom of the span while NE43-good is a failed transmitter, not the
      plant -> NaN (the loop's defined fallback takes over);
    - not stuck: stuck_n identical readings in a row, spanning at least
      stuck_s seconds -> NaN (stuck_n 0: off, for signals that can be exactly
      constant; stuck_s: the longest output hold the instrument makes on its
      own, e.g. a CEMS calibration, during which the held reading is used);
    - rate of change at most max_rate per second: a faster jump is held at the
      last accepted value for one sample and accepted only if the next one
      confirms the new level (a real step is one sample late, a spike never
      gets through).
    check(x, t_s) returns the value to use or NaN; `why` names the last failure.
    """

    def __init__(self, lo, hi, max_rate=math.inf, stuck_n=0, stuck_s=0.0):
        self.lo, self.hi, self.max_rate, self.stuck_n = lo, hi, max_rate, stuck_n
        self.stuck_s = stuck_s
        self.t_same = None   # when the present run of identical readings began
        self.last = None     # last accepted value and its time
        self.t_last = None
        self.cand = None     # a jump waiting for confirmation, and its time
        self.t_cand = None
        self.prev_raw = None
        self.same = 0
        self.why = None

    def _fast(self, x, ref, t_ref, t_s):
        return t_s > t_ref and abs(x - ref) / (t_s - t_ref) > self.max_rate

    def check(self, x, t_s):
        if not good(x):
            self.why = "missing"
            return math.nan
        if x == self.prev_raw:
            self.same += 1
        else:
            self.same, self.t_same = 0, t_s
        self.prev_raw = x
        if not self.lo <= x <= self.hi:
            self.why = "outside %g..%g" % (self.lo, self.hi)
            return math.nan
        if self.stuck_n and self.same >= self.stuck_n and t_s - self.t_same >= self.stuck_s:
            self.why = "stuck"
            return math.nan
        if self.last is not None and self._fast(x, self.last, self.t_last, t_s):
            if self.cand is None or self._fast(x, self.cand, self.t_cand, t_s):
                self.cand, self.t_cand = x, t_s
                self.why = "jump held"
                return self.last
        self.last, self.t_last = x, t_s
        self.cand = None
        self.why = None
        return x


O2_RANGE_PCT = (1.0, 15.0)   # flue gas at a boiler's exit; outside: the analyzer, not the gas
# A live analyzer or transmitter never reads exactly the same STUCK_N polls in
# a row (its noise is several register steps); a frozen one does, and so does
# an analyzer's output hold (blow-back, calibration, a pH probe's wash): either
# way the loop takes its defined fallback, as for a failed reading.
STUCK_N = 30
# A CEMS holds its output during calibration (10-15 min) and blow-back (a few
# minutes), and says so only on a status contact not every rack wires: a held
# reading is used for up to CEMS_HOLD_S, frozen longer it is a failed analyzer.
# (Without this, a load-staging FGD ran every pump through each hold.)
CEMS_HOLD_S = 900.0
PH_RANGE = (2.0, 9.0)        # an absorber's slurry; outside: the probe, not the slurry
PH_RATE = 0.05               # pH/s: a 1,000 m3 tank moves far slower


def ph_check():
    """The plausibility check of an absorber's pH probe (range, rate, stuck)."""
    return Plausible(*PH_RANGE, max_rate=PH_RATE, stuck_n=STUCK_N)


def o2_check():
    """The plausibility check of a flue-gas O2 analyzer (range, 0.5 %/s)."""
    return Plausible(*O2_RANGE_PCT, max_rate=0.5)


def to_6pct(o2):
    """Factor to the 6 % O2 reference, 15 / (21 - O2), for a checked O2
    reading; an unknown one (NaN) is taken at the reference (factor 1). Inside
    the plausible range it is at most 2.5: no division by zero, no sign flip."""
    return 15.0 / (21.0 - o2) if good(o2) else 1.0


def set_dt(pid, dt):
    """Loop 0's sample time for its next step (no bump: only the per-sample gains move)."""
    if dt is not None and pid.param("dt")[0] != dt:
        pid.configure(0, dt=dt)


def pi_step(pid, sp, pv, fallback=None, dt=None):
    """One step of loop 0 of a PID bank over dt seconds (None: as configured):
    auto on a good measurement; otherwise manual, holding its output (or moving
    it to fallback). Transfer is bumpless both ways. Returns the output."""
    set_dt(pid, dt)
    if good(pv):
        pid.set_mode(0, True)
        pid.sp[0] = sp
        pid.pv[0] = pv
    else:
        pid.set_mode(0, False)
        if fallback is not None:
            pid.u_man[0] = fallback
    pid.step()
    return float(pid.u[0])
