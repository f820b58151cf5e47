"""Compressor interlocks (outputs.py's docstring states the rules; bits 3, 5).

Unloaded (the load output, index 1, at 0) while the discharge pressure is above
max_pressure_bar (latched, released 0.2 bar below), and while it is unknown
(NE43 bad or stale) whatever its last value: a blind machine must not load.
Loaded only by a compressor device (Outputs picks it by profile).
"""

from micropython import const

from codec import Q_BAD

IL_PRESSURE = const(8)
IL_P_LOST = const(32)
_HYST = const(200)  # 0.2 bar in raw 0.001 bar


class CompressorInterlock:
    def __init__(self, outputs):
        self.out = outputs
        bank = outputs.bank
        found = bank.lookup(("discharge_pressure_bar", "max_pressure_bar", "high_pressure_unload"))
        self.a = [f[1] for f in found]
        self.slot = bank.quality_slots(("discharge_pressure_bar",))[0]
        self.latched = False

    def check(self, dt, stale):
        out, a = self.out, self.a
        bank = out.bank
        p = bank.ir[a[0]]
        pmax = bank.hr[a[1]]
        if stale or bank.get_quality(self.slot) == Q_BAD:
            out.interlocks |= IL_P_LOST  # the latch keeps its state
        elif p > pmax:
            self.latched = True
        elif p < pmax - _HYST:
            self.latched = False
        if self.latched:
            out.interlocks |= IL_PRESSURE

    def gate(self, i, v):
        if i == 1 and self.out.interlocks & (IL_PRESSURE | IL_P_LOST):
            return 0  # unloaded
        return v

    def show(self):
        self.out.bank.di[self.a[2]] = 1 if self.latched else 0
