"""ESP32 metering ADC: short bursts of timed reads (burst source, adcsrc.py).

MicroPython on the ESP32 has no DMA path for the ADC, and soft timer callbacks
jitter by milliseconds; so the device samples one block in a burst: read the
wired inputs back to back (ADC1 pins, 11 dB attenuation for 0..3.1 V), pace the
sets by ticks_us, one burst per burst_every_ms. The device does not serve the
line during a burst (~45 ms at 50 Hz with one-cycle blocks, see meterdev): give
the line `turnaround_ms = 60` in the host config. Reads within a set are spaced
by the conversion time (~40 us per read_u16), which is the multiplexing delay
the phase compensation takes out.
"""

from array import array
from time import ticks_add, ticks_diff, ticks_us

import micropython
from machine import ADC, Pin

from adcmap import MISSING, chan_map, mux_delay

_READ_US = 40  # one read_u16 on ADC1, measured order of magnitude


class Adc:
    burst = True

    def __init__(self, set_rate_hz, pins):
        inputs, self.slots = chan_map(pins)
        self.nch = len(inputs)
        if self.nch * _READ_US * set_rate_hz > 800000:
            raise ValueError("adc: %d inputs at %d sets/s leave no time between reads on an"
                             " ESP32 (use <= %d sets/s)"
                             % (self.nch, set_rate_hz, 800000 // (self.nch * _READ_US)))
        self.adcs = [ADC(Pin(p), atten=ADC.ATTN_11DB) for p in inputs]
        self.period_us = 1000000 // set_rate_hz
        self.rate = set_rate_hz
        self.raw = array("H", bytes(2 * self.nch))
        self.gaps = 0

    def mux_delay(self, phase):
        return mux_delay(self.slots, self.nch, phase) * self.nch * _READ_US * self.rate / 1e6

    def take(self, buf, nsets):
        _burst(self.adcs, self.nch, self.raw, self.slots, buf, nsets, self.period_us)
        return nsets


@micropython.native
def _burst(adcs, nch, raw, slots, out, nsets, period_us):
    t = ticks_us()
    k = 0
    while k < nsets:
        j = 0
        while j < nch:
            raw[j] = adcs[j].read_u16() >> 4
            j += 1
        b = k * 6
        s = 0
        while s < 6:
            q = slots[s]
            out[b + s] = 2048 if q == MISSING else raw[q]
            s += 1
        t = ticks_add(t, period_us)
        while ticks_diff(t, ticks_us()) > 0:
            pass
        k += 1
