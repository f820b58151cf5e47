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

    def __init__(self, params=None):
        self.params = dict(params or {})
        # A loop group may run a strategy faster or slower than its design
        # period (drives at 100 ms): its kernels are configured with this one.
        self.period_s = float(self.params.get("period_s", self.period_s))

    def run(self, t_s, snap):
        raise NotImplementedError


def good(x):
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def pi_step(pid, sp, pv, fallback=None):
    """One step of loop 0 of a PID bank: auto on a good measurement; otherwise
    manual, holding its output (or moving it to fallback). Transfer is bumpless
    both ways. Returns the output."""
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
