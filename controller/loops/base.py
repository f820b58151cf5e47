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

    def __init__(self, params=None):
        self.params = dict(params or {})

    def run(self, t_s, snap):
        raise NotImplementedError


def good(x):
    return x is not None and not (isinstance(x, float) and math.isnan(x))
