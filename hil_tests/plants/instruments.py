"""The plant's instruments: transmitter spans and the `signal_fault` scenario event.

A plant's measure() gives what its instruments read when they work. A
`signal_fault` event (docs/scenarios.md) makes one measured point of the
plant's profile (a name from the register map) fail in one of MODES while the
event is active:

  high        the top of the instrument's span, as a plausible NE43-good signal
              (a 4-20 mA transmitter at 20 mA)
  low         the bottom of the span (4 mA), NE43-good
  stuck       the last reading before the fault, frozen
  value       a fixed engineering value (`value`)
  drift       the reading plus `value` units per hour since the fault began
  noise       the reading plus Gaussian noise of standard deviation `value`
              (seeded: same scenario and seed, same run)
  wire_break  the loop below 3.6 mA (NE43 bad): NaN, which the HIL plant link
              sends as a broken loop (and as quality bad for a point without
              a loop current)

The span (SPAN, by unit; POINT_SPAN by name) is also what the HIL plant link
(hil_tests/plantlink.py) uses for a point's loop current, so `high` reaches
the firmware as exactly 20 mA and `low` as 4 mA.
"""

import math

import numpy as np

from controller.registers import point_map
from firmware import regmap

MODES = ("high", "low", "stuck", "value", "drift", "noise", "wire_break")
VALUE_MODES = ("value", "drift", "noise")  # the modes that take `value`

# 4-20 mA transmitters: 20 mA reads this (4 mA reads 0), by the point's unit:
# typical ranges of plant instruments.
SPAN = {"mg/Nm3": 5000.0, "pH": 14.0, "C": 600.0, "bar": 16.0, "Nm3/h": 4.0e6,
        "kg/h": 600.0, "ppm": 20.0, "t/h": 100.0, "eng": 1000.0, "mV": 1000.0}
# Points that are no 4-20 mA loop (meters, counters, positions): their reading's span.
READING_SPAN = {"%": (0.0, 100.0), "kW": (0.0, 1000.0), "kWh": (0.0, 1.0e6),
                "V": (0.0, 500.0), "A": (0.0, 1000.0), "Hz": (0.0, 100.0), "h": (0.0, 1.0e5)}
# By name, before the unit: the O2 analyzer's 0-25 % (a loop, though its unit is %).
POINT_SPAN = {"o2_pct": (0.0, 25.0), "power_factor": (0.0, 1.0), "starts_last_hour": (0.0, 400.0)}
LOOP_UNITS_EXCLUDED = ("kW", "h", "", "%", "Hz")
LOOP_POINTS = ("o2_pct",)  # loops whatever their unit
NE43_BROKEN_MA = 2.0       # what a broken loop reads (NE43: below 3.6 mA is a failure)


def is_loop(p):
    """Whether a register-map point is wired as a 4-20 mA transmitter."""
    return p.unit not in LOOP_UNITS_EXCLUDED or p.name in LOOP_POINTS


def span(profile, name):
    """(bottom, top) of the instrument that measures point `name` of `profile`."""
    if name in POINT_SPAN:
        return POINT_SPAN[name]
    p = point_map(profile)[name]
    if p.unit in SPAN:
        return 0.0, SPAN[p.unit]
    if p.unit in READING_SPAN:
        return READING_SPAN[p.unit]
    raise KeyError("no instrument span for %s.%s (unit %r)" % (profile, name, p.unit))


def measured_points(profile):
    """The measured points of a profile: single input registers in the
    measurement block that are not an output's feedback (the firmware's own)."""
    feedback = {fb for _, _, fb in regmap.outputs(profile)}
    return [p.name for p in point_map(profile).values()
            if p.table == regmap.INPUT and p.address >= regmap.MEAS_BASE and p.count == 1
            and p.name not in feedback]


class SignalFaults:
    """Applies a scenario's signal_fault events to a plant's measurements.

    plant: the Plant (its DEVICES, its SIGNALS aliases, its scenario and t_s).
    apply(meas) changes meas in place and returns it."""

    def __init__(self, plant):
        self.plant = plant
        sc = plant.sc
        self.events = [(i, e) for i, e in enumerate(sc.events) if e.kind == "signal_fault"]
        # Per event: the noise generator (its own: the plant's draws stay as
        # they are) and the frozen value of each device's point while stuck.
        self.rng = {i: np.random.default_rng([sc.seed, 7919, i]) for i, _ in self.events}
        self.frozen = {}
        self.last = {}      # (device, point) -> the last reading before any fault
        self.spans = {}
        for i, e in self.events:
            for dev in e.fields["devices"]:
                self.spans[(dev, e.fields["signal"])] = span(plant.DEVICES[dev], e.fields["signal"])

    def _where(self, meas, dev, point):
        """(dict, key) holding a device's point in meas (aliases: process_sp)."""
        alias = self.plant.ALIASES.get((dev, point))
        if alias is not None:
            return meas[alias[0]], alias[1]
        return meas[dev], point

    def apply(self, meas):
        t = self.plant.t_s
        faulted = set()
        for i, e in self.events:
            active = e.active(t)
            sig, mode, val = e.fields["signal"], e.fields["mode"], e.fields["value"]
            for dev in e.fields["devices"]:
                d, key = self._where(meas, dev, sig)
                if key not in d:
                    raise ValueError("signal_fault event %d: plant %s does not measure %s.%s"
                                     % (i, self.plant.name, dev, sig))
                if not active:
                    self.frozen.pop((i, dev), None)
                    continue
                lo, hi = self.spans[(dev, sig)]
                x = d[key]
                if mode == "high":
                    y = hi
                elif mode == "low":
                    y = lo
                elif mode == "stuck":
                    if (i, dev) not in self.frozen:
                        self.frozen[(i, dev)] = self.last.get((dev, sig), x)
                    y = self.frozen[(i, dev)]
                elif mode == "value":
                    y = val
                elif mode == "drift":
                    start = e.at_s + (math.floor((t - e.at_s) / e.every_s) * e.every_s
                                      if e.every_s else 0.0)
                    y = x + val * (t - start) / 3600.0
                elif mode == "noise":
                    y = x + val * self.rng[i].standard_normal()
                else:  # wire_break
                    y = math.nan
                d[key] = y
                faulted.add((dev, sig))
                ma = key + "_ma"  # a plant that reports the loop current too
                if ma in d:
                    d[ma] = NE43_BROKEN_MA if math.isnan(y) else \
                        4.0 + 16.0 * min(max((y - lo) / (hi - lo), 0.0), 1.0)
        for i, e in self.events:
            for dev in e.fields["devices"]:
                sig = e.fields["signal"]
                if (dev, sig) not in faulted:
                    d, key = self._where(meas, dev, sig)
                    self.last[(dev, sig)] = d[key]
        return meas
