"""Gas analyzer model (CEMS): transport dead time (variable), first-order lag,
blow-back holds, stuck and drifting readings, wire break (NE43 fault)."""

import math

import numpy as np

from cython_ext import load


class Analyzer:
    def __init__(self, dt_s, dead_time_s, lag_s, max_dead_time_s=900.0, initial=0.0):
        dl = load("deadtime")
        self.dt_s = dt_s
        self.dead_time_s = dead_time_s
        self.line = dl.DelayLine(1, max_dead_time_s, dt_s, initial)
        self.a = math.exp(-dt_s / lag_s)
        self.y = initial
        self.held = None
        self.stuck = None
        self._x = np.zeros(1)
        self._d = np.zeros(1)

    def step(self, true_value, dead_time_s=None):
        self._x[0] = true_value
        self._d[0] = min(dead_time_s if dead_time_s is not None else self.dead_time_s,
                         self.line_max())
        delayed = self.line.step(self._x, self._d)[0]
        self.y = self.a * self.y + (1 - self.a) * delayed
        return self.y

    def line_max(self):
        return 900.0

    def reading(self, blowback=False, stuck=False, drift=0.0):
        """What the analyzer reports now (held during blow-back, frozen when stuck)."""
        if blowback:
            self.held = self.y if self.held is None else self.held
            return self.held
        self.held = None
        if stuck:
            self.stuck = self.y if self.stuck is None else self.stuck
            return self.stuck
        self.stuck = None
        return self.y + drift


class Cems:
    """One extractive CEMS channel (an inlet NOx, SO2 or O2 analyzer): what the
    host reads of the gas (docs/models.md, "Instruments").

    - transport dead time and a first-order lag (Analyzer);
    - Gaussian noise of std `noise` (seeded: same scenario and seed, same run);
    - calibration drift: the reading walks off by up to `drift_per_day` units a
      day, each calibration interval with its own rate drawn in
      [-drift_per_day, +drift_per_day] (seeded), back to zero at every
      calibration;
    - a daily (every cal_every_h) zero/span calibration of cal_s seconds and a
      blow-back of blowback_s every blowback_every_h (probe filter purge): the
      reading holds its last value during both, as the analyzer's output hold
      does; `status(t)` says which (the data system's discretes).
    Timing phases (first blow-back and first calibration) in hours from t = 0.
    step(t_s, true_value, dead_time_s=None) advances it; reading(t_s) is the value.
    """

    KEYS = ("dead_time_s", "lag_s", "noise", "drift_per_day", "cal_every_h", "cal_s",
            "cal_phase_h", "blowback_every_h", "blowback_s", "blowback_phase_h")

    def __init__(self, dt_s, dead_time_s, lag_s, noise=0.0, drift_per_day=0.0,
                 cal_every_h=0.0, cal_s=0.0, cal_phase_h=0.0, blowback_every_h=0.0,
                 blowback_s=0.0, blowback_phase_h=0.0, initial=0.0, seed=0, lo=0.0):
        self.an = Analyzer(dt_s, dead_time_s, max(lag_s, 1e-3), initial=initial)
        self.noise, self.drift_per_day, self.lo = noise, drift_per_day, lo
        self.cal = (cal_every_h * 3600.0, cal_s, cal_phase_h * 3600.0)
        self.bb = (blowback_every_h * 3600.0, blowback_s, blowback_phase_h * 3600.0)
        self._rng = np.random.default_rng(seed)
        self._rate_interval = None
        self._rate = 0.0
        self.held = None
        self.t_s = 0.0

    @classmethod
    def from_params(cls, p, prefix, dt_s, initial, seed, lo=0.0):
        """A channel from a plant's parameters <prefix>_<KEY> (PARAMS)."""
        return cls(dt_s, *[p[prefix + "_" + k] for k in cls.KEYS], initial=initial,
                   seed=seed, lo=lo)

    @staticmethod
    def _in(t, spec):
        every, dur, phase = spec
        if not every or not dur or t < phase:
            return False
        return (t - phase) % every < dur

    def status(self, t_s=None):
        """(in blow-back, in calibration) at t_s (default: the last step's end)."""
        t = self.t_s if t_s is None else t_s
        return self._in(t, self.bb), self._in(t, self.cal)

    def drift(self, t_s):
        """The calibration drift now: rate x time since the last calibration."""
        every, dur, phase = self.cal
        if every and t_s >= phase:
            k = math.floor((t_s - phase) / every)
            since = t_s - (phase + k * every + dur)
        else:
            k, since = -1, t_s
        if since <= 0:
            return 0.0
        if k != self._rate_interval:
            self._rate_interval = k
            self._rate = self.drift_per_day * (2.0 * self._rng.random() - 1.0)
        return self._rate * since / 86400.0

    def step(self, t_s, true_value, dead_time_s=None):
        self.an.step(true_value, dead_time_s)
        self.t_s = t_s + self.an.dt_s

    def reading(self, t_s=None):
        t = self.t_s if t_s is None else t_s
        bb, cal = self.status(t)
        if bb or cal:
            if self.held is None:
                self.held = self._value(t)
            return self.held
        self.held = None
        return self._value(t)

    def _value(self, t):
        x = self.an.y + self.drift(t)
        if self.noise:
            x += self.noise * self._rng.standard_normal()
        return max(x, self.lo)


class FlowMeter:
    """A flue-gas flow meter (a large duct: a multi-point pitot array or an
    ultrasonic meter): reading = true x (1 + bias) through a first-order lag,
    plus noise of std noise_frac x the reading (seeded)."""

    def __init__(self, dt_s, bias_frac=0.0, noise_frac=0.0, lag_s=1.0, initial=0.0, seed=0):
        self.bias, self.noise = bias_frac, noise_frac
        self.a = math.exp(-dt_s / max(lag_s, 1e-3))
        self.y = initial * (1.0 + bias_frac)
        self._rng = np.random.default_rng(seed)

    def step(self, true_value):
        self.y = self.a * self.y + (1.0 - self.a) * true_value * (1.0 + self.bias)

    def reading(self):
        x = self.y
        if self.noise:
            x *= 1.0 + self.noise * self._rng.standard_normal()
        return max(x, 0.0)


def cems_params(prefix, dead_time_s, lag_s, noise, drift_per_day, cal_every_h, cal_s, cal_phase_h,
                blowback_every_h, blowback_s, blowback_phase_h, noise_max=1e4):
    """A plant's PARAMS entries {key: (default, lo, hi)} for one Cems channel."""
    d = dict(zip(Cems.KEYS, (dead_time_s, lag_s, noise, drift_per_day, cal_every_h, cal_s,
                             cal_phase_h, blowback_every_h, blowback_s, blowback_phase_h)))
    rng = {"dead_time_s": (0.0, 900.0), "lag_s": (0.0, 600.0), "noise": (0.0, noise_max),
           "drift_per_day": (0.0, noise_max * 100), "cal_every_h": (0.0, 24 * 31),
           "cal_s": (0.0, 3600.0), "cal_phase_h": (0.0, 24 * 31),
           "blowback_every_h": (0.0, 24 * 31), "blowback_s": (0.0, 3600.0),
           "blowback_phase_h": (0.0, 24 * 31)}
    return {prefix + "_" + k: (float(v),) + rng[k] for k, v in d.items()}
