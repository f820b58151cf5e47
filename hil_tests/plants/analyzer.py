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
