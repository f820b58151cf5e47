"""4-20 mA inputs: NAMUR NE43 quality, scaling to engineering units, filtering.

NE43: 3.8-20.5 mA is a valid measurement (4-20 mA scaled to lo..hi, a little
beyond at the edges); 3.6-3.8 and 20.5-21 mA are outside the range but not a
failure (uncertain); <= 3.6 mA or >= 21 mA is a failure (bad: wire break,
short, transmitter fault). An analyzer's status input (blow-back, calibration)
makes its reading uncertain. A bad reading never reaches the register: the
register keeps the last good value and the quality slot says bad.
"""

from math import exp

from codec import encode
from codec import Q_BAD, Q_GOOD, Q_UNCERTAIN

NE43_FAIL_LOW = 3.6
NE43_VALID_LOW = 3.8
NE43_VALID_HIGH = 20.5
NE43_FAIL_HIGH = 21.0


def ne43(ma):
    """Quality of a loop current per NAMUR NE43."""
    if ma != ma or ma <= NE43_FAIL_LOW or ma >= NE43_FAIL_HIGH:
        return Q_BAD
    if ma < NE43_VALID_LOW or ma > NE43_VALID_HIGH:
        return Q_UNCERTAIN
    return Q_GOOD


class AnalogInput:
    """One 4-20 mA input feeding one register point.

    lo/hi: engineering values at 4 and 20 mA; tau_s: first-order filter time
    constant (0: none); counts_per_ma/offset: ADC calibration (ma = (counts -
    offset) / counts_per_ma).
    """

    def __init__(self, bank, point, lo, hi, tau_s=0.0, counts_per_ma=204.8, offset=0.0):
        if not hi != lo:
            raise ValueError("%s: 4 and 20 mA map to the same value %r" % (point, lo))
        if tau_s < 0:
            raise ValueError("%s: tau_s %r < 0" % (point, tau_s))
        self.bank = bank
        self.point = point
        self.slot = bank.quality_slot(point)
        self.where = bank.addr(point)
        self.lo, self.hi, self.tau = lo, hi, tau_s
        self.cpm, self.offset = counts_per_ma, offset
        self.value = None
        self.quality = Q_BAD

    def update_ma(self, ma, dt_s, status_uncertain=False):
        q = ne43(ma)
        if q != Q_BAD:
            eng = self.lo + (ma - 4.0) * (self.hi - self.lo) / 16.0
            if self.value is None or self.tau <= 0:
                self.value = eng
            else:
                a = exp(-dt_s / self.tau)
                self.value = a * self.value + (1 - a) * eng
            if status_uncertain and q == Q_GOOD:
                q = Q_UNCERTAIN
            self._store(self.value)
        self.quality = q
        bank = self.bank
        bank.set_quality(self.slot, q)
        bank.samples = (bank.samples + 1) & 0x3FFF  # the inputs are live (outputs.py)
        return q

    def update_counts(self, counts, dt_s, status_uncertain=False):
        return self.update_ma((counts - self.offset) / self.cpm, dt_s, status_uncertain)

    def _store(self, value):
        table, a, t, scale = self.where
        p = (self.point, table, a, t, scale)
        try:
            words = encode(p, value)
        except ValueError:
            # Beyond what the register can hold: clamp to its range, keep quality.
            words = encode(p, 0 if value < 0 else (0xFFFF if t == "u16" else 0x7FFF) * scale)
        regs = self.bank.ir
        for i in range(len(words)):
            regs[a + i] = words[i]
