"""Plant base: parameters from TOML with ranges, the points interface, truths,
and the instruments' signal_fault events (hil_tests/plants/instruments.py)."""

from pathlib import Path

from controller.config.toml import Section, load

PARAM_DIR = Path(__file__).resolve().parent / "params"


def load_params(plant, spec, path=None):
    """Validated parameters: spec {key: (default, lo, hi)}; a string default takes a string."""
    path = Path(path) if path else PARAM_DIR / ("%s.toml" % plant)
    data, text = load(path)
    top = Section(path, text, data)
    sec = top.table(plant)
    out = {}
    for key, (default, lo, hi) in spec.items():
        if isinstance(default, str):
            out[key] = sec.str(key, default, choices=hi)
        else:
            out[key] = sec.num(key, default, lo, hi)
    sec.check_unknown()
    top.check_unknown()
    return out


class Plant:
    """Subclasses set NAME-specific SPEC (scenario profiles/events, and
    "signals": the measured points of each device a signal_fault event may
    fail, names from the register map) and PARAMS."""

    PARAMS = {}
    SPEC = {"profiles": {}, "events": {}}
    DEVICES = {}  # device name -> firmware profile
    # A device's register point that measure() carries elsewhere:
    # (device, point) -> (measure() key, its point), e.g. the process set point.
    ALIASES = {}

    def __init__(self, name, scenario, params=None, options=None):
        self.name = name
        self.sc = scenario
        self.p = params if params is not None else load_params(name, self.PARAMS)
        self.options = dict(options or {})
        self.cmd = {dev: {} for dev in self.DEVICES}
        self.t_s = 0.0
        if any(e.kind == "signal_fault" for e in scenario.events):
            # The instruments fail as the scenario says: every reader of
            # measure() (model-in-the-loop, the HIL plant link) sees the fault.
            from hil_tests.plants.instruments import SignalFaults
            faults, healthy = SignalFaults(self), self.measure
            self.signal_faults = faults
            self.measure = lambda: faults.apply(healthy())

    def actuate(self, device, point, value):
        if device not in self.cmd:
            raise KeyError("plant %s has no device %r" % (self.name, device))
        self.cmd[device][point] = value

    def measure(self):
        raise NotImplementedError

    def truth(self):
        """True (unmeasured) values for the KPI frame."""
        raise NotImplementedError

    def step(self, t_s, dt_s):
        raise NotImplementedError
