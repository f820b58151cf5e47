"""Compressed air. Baseline: cascaded pressure switches (each fixed machine loads
below its cut-in and unloads above its cut-out, bands stacked downwards) with
the VSD machine on a PI at the top of the cascade; motors stop after a run-on
time unloaded. Typical of stations with no master controller: stacked bands
run the header 20-25 psi (1.4-1.7 bar) above what the users need (PLANT_MODELS
section 2), here about 7.7 bar(g) for a 6.0 bar minimum."""

from cython_ext import load
from controller.loops.base import Strategy, good, pi_step

MACHINES = ("c1", "c2", "c3")


class CascadeBaseline(Strategy):
    BANDS = {"c1": (7.4, 8.1), "c2": (7.2, 7.9), "c3": (7.0, 7.7)}
    VSD_SP = 7.8
    RUN_ON_S = 600.0

    def __init__(self, params=None):
        super().__init__(params)
        self.loaded = {m: False for m in MACHINES}
        self.unloaded_since = {m: 0.0 for m in MACHINES}
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=40.0, ti=20.0, umin=23.0, umax=100.0, dt=self.period_s)
        self.last_p = 7.0

    def run(self, t_s, snap):
        p = snap["c1"]["discharge_pressure_bar"]
        p = p if good(p) else self.last_p
        self.last_p = p
        out = {}
        for m in MACHINES:
            on, off = self.BANDS[m]
            if p < on:
                self.loaded[m] = True
            elif p > off:
                if self.loaded[m]:
                    self.unloaded_since[m] = t_s
                self.loaded[m] = False
            run = self.loaded[m] or t_s - self.unloaded_since[m] < self.RUN_ON_S
            out[m] = {"run_cmd": int(run), "load_cmd": int(self.loaded[m]), "speed_ref_pct": 0.0}
        vsd = pi_step(self.pid, self.VSD_SP, p)
        out["vsd"] = {"run_cmd": 1, "load_cmd": 1, "speed_ref_pct": vsd}
        return out


def _on(x):
    return good(x) and bool(x)


class SequencerStrategy(Strategy):
    """Master sequencer: one narrow pressure band at the lowest setpoint that
    holds the minimum header pressure, the VSD machine as PI trim, fixed
    machines loaded and unloaded by the VSD's position.

    - VSD: PI on header pressure at SETPOINT (6.35 bar(g) for a 6.0 minimum)
      while a spare machine can be loaded; with none left the setpoint rises to
      RESERVE_SETPOINT so the receiver holds enough air to ride out a surge the
      station cannot supply.
    - Add a fixed machine when the VSD has been at full speed for ADD_S, or at
      once when pressure falls ADD_BAR below the setpoint (surge, trip); the
      machine with the fewest run hours goes first (run-hour equalisation).
    - Remove one when the VSD has idled below DROP_PCT for DROP_S, or sooner
      when the VSD sits at its minimum with pressure above the setpoint (the
      fixed step is larger than the VSD's range: in that gap one machine
      alternates loaded/unloaded); the machine with the most run hours goes first.
    - An unloaded machine stops after RUN_ON_S idle; starts per hour and minimum
      run/stop times are enforced on the device as well.
    - A tripped machine (fault) is never asked to run; its load moves at once.
    - Pressure unknown: hold the current machines and put the VSD to full speed.
    """

    PARAMS = ("kp", "ti")     # VSD pressure PI: %/bar and s

    SETPOINT = 6.35           # with a spare machine to load: the least that holds 6.0
    RESERVE_SETPOINT = 7.2    # every machine loaded: keep air in the receiver for surges
    SP_RATE = 0.01            # bar/s: setpoint moves, never jumps
    ADD_BAR = 0.2
    ADD_S = 8.0
    DROP_PCT = 30.0
    DROP_S = 90.0
    RUN_ON_S = 300.0

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        # Tuning from the loop's params (config), defaults for a 1 s loop without delay.
        self.pid.configure(kp=self.params.get("kp", 60.0), ti=self.params.get("ti", 15.0),
                           umin=23.0, umax=100.0, dt=self.period_s, tt=5.0)
        self.loaded = {m: False for m in MACHINES}
        self.idle_since = {m: -1e9 for m in MACHINES}
        self.full_since = None
        self.low_since = None
        self.last_change = -1e9
        self.sp = self.SETPOINT

    def run(self, t_s, snap):
        p = snap["vsd"]["discharge_pressure_bar"]
        faults = {m: bool(snap[m]["comp_fault"]) for m in MACHINES}
        hours = {m: snap[m]["run_hours_h"] for m in MACHINES}
        for m in MACHINES:
            if faults[m] and self.loaded[m]:
                self.loaded[m] = False
                self.idle_since[m] = t_s
        spare_left = any(not self.loaded[m] and not faults[m] for m in MACHINES)
        at_capacity = not spare_left
        want = self.RESERVE_SETPOINT if at_capacity else self.SETPOINT
        step = self.SP_RATE * self.period_s
        self.sp += max(-step, min(step, want - self.sp))
        speed = pi_step(self.pid, self.sp, p, fallback=100.0)
        self.full_since = (self.full_since if self.full_since is not None else t_s) \
            if speed >= 99.5 else None
        self.low_since = (self.low_since if self.low_since is not None else t_s) \
            if speed <= self.DROP_PCT else None
        spare = [m for m in MACHINES if not self.loaded[m] and not faults[m]]
        busy = [m for m in MACHINES if self.loaded[m]]
        urgent = good(p) and p < self.sp - self.ADD_BAR and t_s - self.last_change > 3.0
        if spare and (urgent or (self.full_since is not None and t_s - self.full_since >= self.ADD_S)):
            # A machine still running unloaded loads at once; a stopped one may be
            # held off by its device (minimum off time, starts per hour).
            m = min(spare, key=lambda x: (not _on(snap[x].get("running")), hours[x]))
            self.loaded[m] = True
            self.full_since = None
            self.last_change = t_s
        elif busy and good(p) and self.low_since is not None and (
                t_s - self.low_since >= self.DROP_S
                or (speed <= 24.0 and p > self.sp + 0.15 and t_s - self.low_since >= 20.0)):
            # Over-supplied with the VSD at its minimum (the control gap): unload one.
            m = max(busy, key=lambda x: hours[x])
            self.loaded[m] = False
            self.idle_since[m] = t_s
            self.low_since = None
            self.last_change = t_s
        out = {}
        for m in MACHINES:
            run = not faults[m] and (self.loaded[m] or t_s - self.idle_since[m] < self.RUN_ON_S)
            out[m] = {"run_cmd": int(run), "load_cmd": int(self.loaded[m] and run),
                      "speed_ref_pct": 0.0}
        out["vsd"] = {"run_cmd": 1, "load_cmd": 1, "speed_ref_pct": speed}
        return out
