"""Loop modes and bumpless transfer.

    auto      the strategy runs on each fresh snapshot
    fallback  one of its devices is down: the strategy runs and sees NaN for it
              (each strategy defines what it then does)
    manual    the operator's values over the last outputs; the strategy does
              not run, so it resumes from where it was
    error     the strategy raised: outputs hold, logged once a minute

Manual -> auto: bumpless, as an IEC 61131 PID block with tracking. On the
first run back, each PI behind an output (Strategy.TRACK) takes its integral
from the output the plant has now (the operator's), with the present error,
so the strategy continues from there instead of returning to what it held
before manual (a stale integral). On top, the analog outputs ramp from the
manual values to the strategy's over TRANSFER_S of plant time (bits switch at
once).
A LoopRunner holds one loop's strategy and mode state; nothing else adds to it.
"""

import math

from controller.loops import strategy_class
from controller.runtime.state import finite

TRANSFER_S = 60.0


class LoopRunner:
    def __init__(self, cfg):
        self.cfg = cfg
        self.strategy = strategy_class(cfg.plant, cfg.strategy)(cfg.params)
        self.process = dict(cfg.process)   # set points may be changed through the gate
        self.mode = "auto"
        self.errors = 0
        self.last_error_log = -math.inf
        self.cmds = {}       # role -> {point: value} of the last run
        self.runs = 0
        self.held = 0        # cycles skipped: no new poll of its devices since the last run
        self.stamp = None
        self.manual = None     # {role: {point: value}} while in manual, else None
        self.transfer = None   # (t0, {role: {point: value}}) ramping back from manual
        self.tracking = None   # the PIs' integrals until the first run back from manual
        self.t_s = None        # plant time of the last run

    def state(self):
        """What the hub carries for this loop."""
        return {"mode": self.mode, "runs": self.runs, "held": self.held, "errors": self.errors,
                "cmds": {r: dict(v) for r, v in self.cmds.items()}, "t_s": self.t_s,
                "manual": self.manual is not None,
                "process": {k: v for k, v in self.process.items() if not isinstance(v, tuple)}}


def manual_commands(runner):
    """Manual: the operator's values over the last outputs (bumpless in)."""
    cmds = {role: dict(v) for role, v in runner.cmds.items()}
    for role, vals in runner.manual.items():
        cmds.setdefault(role, {}).update(vals)
    return cmds


def start_transfer(runner, t_s):
    runner.transfer = (t_s, {role: dict(v) for role, v in runner.cmds.items()})
    runner.tracking = runner.strategy.pi_integrals()
    runner.strategy.resume(t_s)
    runner.stamp = None


def ramp_from_manual(runner, out, t_s, points_of):
    """The strategy's outputs, moved towards from the manual values over
    TRANSFER_S; points_of(role) -> the role's point map (bits switch at once)."""
    t0, start = runner.transfer
    if runner.tracking is not None:  # the first run back: the PIs start from the present outputs
        integrals, runner.tracking = runner.tracking, None
        runner.strategy.track(out, start, integrals)
    f = (t_s - t0) / TRANSFER_S
    if f >= 1.0:
        runner.transfer = None
        return out
    for role, vals in out.items():
        pts = points_of(role)
        for k, v in vals.items():
            s0 = start.get(role, {}).get(k)
            p = pts.get(k) if pts else None
            if s0 is not None and p is not None and p.type != "bit" and finite(v):
                vals[k] = s0 + (v - s0) * max(0.0, f)
    return out
