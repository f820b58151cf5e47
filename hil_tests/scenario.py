"""Scenarios: time profiles and events for a plant, from TOML (no code needed).

    [scenario]
    name = "scr_standard"
    plant = "scr"          # fan | pump | compressor | scr | fgd
    hours = 24.0
    seed = 7
    step_s = 1.0           # model-in-the-loop step

    [profiles.load_pct]    # time in hours, value; linear between points
    points = [[0, 60], [6, 100], [22, 100], [24, 60]]
    noise = 0.01           # relative, seeded, smoothed over noise_tau_s (default 60 s)

    [[events]]
    kind = "analyzer_blowback"
    at_h = 2.0
    duration_h = 0.0667
    every_h = 2.0          # optional: repeats until the end

Each plant names the profiles it needs and the event kinds it understands (with
their fields); anything else is an error naming the file, the key and the line.
"""

import bisect
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from controller.config.toml import ConfigError, Section, key_line, load

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


@dataclass
class Profile:
    name: str
    t_s: np.ndarray
    v: np.ndarray
    noise: float
    noise_tau_s: float
    _rng: np.random.Generator = None
    _n: float = 0.0
    _t_last: float = None

    def base(self, t_s):
        """Linear interpolation, held flat beyond the ends (np.interp semantics)."""
        ts, vs = self._tl, self._vl
        if t_s <= ts[0]:
            return vs[0]
        if t_s >= ts[-1]:
            return vs[-1]
        i = bisect.bisect_right(ts, t_s)
        t0, t1 = ts[i - 1], ts[i]
        return vs[i - 1] + (vs[i] - vs[i - 1]) * (t_s - t0) / (t1 - t0)

    def __post_init__(self):
        # Plain lists: bisect on floats is ~10x cheaper than np.interp on one scalar.
        self._tl = [float(x) for x in self.t_s]
        self._vl = [float(x) for x in self.v]

    def __call__(self, t_s):
        """Base value times (1 + noise * n), n a unit AR(1) process (time constant noise_tau_s)."""
        b = self.base(t_s)
        if not self.noise:
            return b
        if self._t_last is None:
            self._n = self._rng.standard_normal()
        else:
            a = math.exp(-max(0.0, t_s - self._t_last) / self.noise_tau_s)
            self._n = a * self._n + math.sqrt(1 - a * a) * self._rng.standard_normal()
        self._t_last = t_s
        return b * (1 + self.noise * self._n)


@dataclass
class Event:
    kind: str
    at_s: float
    duration_s: float
    every_s: float
    fields: dict

    def active(self, t_s):
        if t_s < self.at_s:
            return False
        k = 0 if not self.every_s else math.floor((t_s - self.at_s) / self.every_s)
        start = self.at_s + k * self.every_s
        return start <= t_s < start + self.duration_s or (self.duration_s == 0 and t_s >= start)


@dataclass
class Scenario:
    name: str
    plant: str
    hours: float
    seed: int
    step_s: float
    profiles: dict
    events: list = field(default_factory=list)
    path: str = ""

    def active(self, kind, t_s):
        """Events of a kind active at t_s."""
        return [e for e in self.events if e.kind == kind and e.active(t_s)]


def resolve(name_or_path):
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    cand = SCENARIO_DIR / (name_or_path + ".toml")
    if not cand.exists():
        known = sorted(x.stem for x in SCENARIO_DIR.glob("*.toml"))
        raise ConfigError(name_or_path, None, None,
                          "no such scenario (known: %s)" % ", ".join(known))
    return cand


def load_scenario(name_or_path, spec, hours=None, seed=None, plant=None):
    """Parse and validate a scenario against a plant's spec.

    spec: {"profiles": {name: (lo, hi)}, "events": {kind: {field: (lo, hi)}}};
    plant: the plant the caller runs (a scenario for another plant is an error).
    """
    path = resolve(name_or_path)
    data, text = load(path)
    top = Section(path, text, data)
    sc = top.table("scenario")
    name = sc.str("name", path.stem)
    expected = plant
    plant = sc.str("plant")
    if expected is not None and plant != expected:
        raise sc.error("plant", "scenario is for plant %r, not %r" % (plant, expected))
    hrs = sc.num("hours", 24.0, 0.001, 24 * 366)
    sd = int(sc.num("seed", 0, 0, 2 ** 32 - 1))
    step_s = sc.num("step_s", 1.0, 0.01, 60.0)
    sc.check_unknown()
    hrs = hours if hours is not None else hrs
    sd = seed if seed is not None else sd
    rng = np.random.default_rng(sd)
    profs = {}
    ptab = top.table("profiles")
    for pname, (lo, hi) in spec["profiles"].items():
        if pname not in ptab.data:
            raise ConfigError(path, "profiles." + pname, key_line(text, "profiles"),
                              "missing profile (plant %s needs: %s)"
                              % (plant, ", ".join(spec["profiles"])))
        pt = ptab.table(pname)
        pts = pt.raw("points")
        if (not isinstance(pts, list) or not pts
                or not all(isinstance(x, list) and len(x) == 2 for x in pts)):
            raise pt.error("points", "expected a list of [hours, value] pairs")
        try:
            arr = np.array(pts, dtype=float)
        except (TypeError, ValueError):
            raise pt.error("points", "non-numeric entry in %r" % (pts,))
        if np.any(np.diff(arr[:, 0]) < 0):
            raise pt.error("points", "times must not decrease")
        if np.any(arr[:, 1] < lo) or np.any(arr[:, 1] > hi):
            raise pt.error("points", "values must lie in %g..%g" % (lo, hi))
        noise = pt.num("noise", 0.0, 0.0, 0.5)
        tau = pt.num("noise_tau_s", 60.0, 0.1, 86400.0)
        pt.check_unknown()
        profs[pname] = Profile(pname, arr[:, 0] * 3600.0, arr[:, 1], noise, tau,
                               np.random.default_rng(rng.integers(2 ** 32)))
    for pname in ptab.data:
        if pname not in spec["profiles"]:
            raise ptab.error(pname, "unknown profile for plant %s (known: %s)"
                            % (plant, ", ".join(spec["profiles"])))
    events = []
    raw_events = top.raw("events", [])
    if not isinstance(raw_events, list):
        raise top.error("events", "expected [[events]] entries")
    kinds = sorted(spec["events"]) + (["signal_fault"] if spec.get("signals") else [])
    for i, ev in enumerate(raw_events):
        if not isinstance(ev, dict):
            raise top.error("events", "entry %d: expected an [[events]] table" % i)
        es = Section(path, text, ev, "events.%d." % i)
        kind = es.str("kind", choices=kinds)
        at = es.num("at_h", None, 0.0, 24 * 366) * 3600
        dur = es.num("duration_h", 0.0, 0.0, 24 * 366) * 3600
        every = es.num("every_h", 0.0, 0.0, 24 * 366) * 3600
        if every and every < dur:
            raise es.error("every_h", "shorter than duration_h")
        if kind == "signal_fault":
            fields = _signal_fault(es, spec["signals"], plant)
        else:
            fields = {}
            for fname, (lo, hi) in spec["events"][kind].items():
                fields[fname] = es.num(fname, None, lo, hi)
        es.check_unknown()
        events.append(Event(kind, at, dur, every, fields))
    top.check_unknown()
    return Scenario(name, plant, hrs, sd, step_s, profs, events, str(path))


def _signal_fault(es, signals, plant):
    """The fields of a signal_fault event (hil_tests/plants/instruments.py):
    signal (a measured point of the plant's profile), mode, value (for value,
    drift and noise only), device (optional: default every device that
    measures the signal). Errors name the event (events.N) and its line."""
    from hil_tests.plants.instruments import MODES, VALUE_MODES
    known = sorted({p for pts in signals.values() for p in pts})

    def missing(key, msg):  # at the event's own line (its kind)
        return ConfigError(es.path, es.prefix + key, key_line(es.text, es.prefix + "kind"),
                           "signal_fault: missing: " + msg)

    if "signal" not in es.data:
        raise missing("signal", "the measured point that fails (one of %s)" % ", ".join(known))
    sig = es.str("signal")
    devs = [d for d, pts in signals.items() if sig in pts]
    if not devs:
        raise es.error("signal", "signal_fault: unknown signal %r for plant %s (its measured "
                       "points: %s)" % (sig, plant, ", ".join(known)))
    mode = es.str("mode", choices=MODES)
    if "device" in es.data:
        devs = [es.str("device", choices=devs)]
    if mode in VALUE_MODES:
        if "value" not in es.data:
            raise missing("value", "mode %r needs a value (%s)" % (mode, {
                "value": "the engineering value it reads", "drift": "units per hour",
                "noise": "the noise's standard deviation"}[mode]))
        value = es.num("value", None, 0.0 if mode == "noise" else -1e12, 1e12)
    else:
        if "value" in es.data:
            raise es.error("value", "signal_fault: mode %r takes no value" % mode)
        value = None
    return {"signal": sig, "mode": mode, "value": value, "devices": tuple(devs)}
