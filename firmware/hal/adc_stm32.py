"""STM32 (pyboard-class) metering ADC: timer-paced bursts with
pyb.ADC.read_timed_multi (burst source, adcsrc.py).

A hardware timer triggers each set; every wired input is converted at that tick
into its own buffer (the inputs of a set are converted back to back, ~a few us
apart: the multiplexing delay is negligible at mains frequency). The call blocks
for the burst (~45 ms at 50 Hz with one-cycle blocks), during which the line
waits: give the line `turnaround_ms = 60` in the host config. Pins are pin names
("X1") or numbers as pyb.Pin takes them.
"""

from array import array

import pyb

from adcmap import MISSING, chan_map
from adcsrc import mid_slot, put_slot

_TIMER = 6  # a basic timer, free on pyboards


class Adc:
    burst = True

    def __init__(self, set_rate_hz, pins, nsets):
        inputs, self.slots = chan_map(pins)
        self.nch = len(inputs)
        self.adcs = tuple(pyb.ADC(pyb.Pin(p)) for p in inputs)
        self.bufs = tuple(array("H", bytes(2 * nsets)) for _ in inputs)
        self.nsets = nsets
        self.tim = pyb.Timer(_TIMER, freq=set_rate_hz)
        self.gaps = 0

    def mux_delay(self, phase):
        return 0.0

    def take(self, buf, nsets):
        if nsets != self.nsets:
            raise ValueError("adc: bursts are %d sets, asked %d" % (self.nsets, nsets))
        pyb.ADC.read_timed_multi(self.adcs, self.bufs, self.tim)
        slots = self.slots
        for s in range(6):
            if slots[s] == MISSING:
                mid_slot(buf, s, nsets)
            else:
                put_slot(self.bufs[slots[s]], buf, s, nsets)
        return nsets
