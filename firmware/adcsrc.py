"""What every metering sample source shares: the channel map and the viper
copies from a board's raw ADC layout into the meter's sets.

The meter takes interleaved sets of 6 unsigned 12-bit samples (V1 V2 V3 I1 I2
I3). A source is one of two kinds:

- streaming (`burst = False`; the sim ADC, RP2040 ADC FIFO + DMA): take(buf, n)
  returns the sets ready now (0..n), each call contiguous with the last; a lost
  stretch (the DMA lapped the reader) counts one in `gaps`, and the meter drops
  its open block.
- burst (`burst = True`; ESP32 timed reads, STM32 ADC.read_timed_multi):
  take(buf, n) blocks for one contiguous burst of n sets. Each burst is one
  block; the energy counts the burst's power over the time between bursts.

Wiring (config `adc_pins`, V1 V2 V3 I1 I2 I3; null where nothing is wired): V1 and
one current are required. A missing V2/V3 reads V1 (one voltage for single-phase
circuits: the "1 V + several I" meter); a missing current reads zero (mid-scale).
Inputs are sampled in ascending order within a set, and the phase compensation
can only delay V, so each voltage must sit on a lower input than its current.
"""

import micropython
from micropython import const

_MISSING = const(255)
MISSING = _MISSING  # slot code: no input (mid-scale, zero current)


def chan_map(pins, order=None):
    """(inputs, slots) for the 6 configured pins: inputs in sampling order (sorted
    unless order is given), slots a bytearray(6) of each slot's position in a raw
    set (MISSING for an unwired current). Raises ValueError on bad wiring."""
    if not isinstance(pins, (list, tuple)) or len(pins) != 6:
        raise ValueError("adc_pins: 6 entries (V1 V2 V3 I1 I2 I3), got %r" % (pins,))
    if pins[0] is None:
        raise ValueError("adc_pins: V1 must be wired")
    if pins[3] is None and pins[4] is None and pins[5] is None:
        raise ValueError("adc_pins: at least one current must be wired")
    wired = [p for p in pins if p is not None]
    for p in wired:
        if wired.count(p) > 1:
            raise ValueError("adc_pins: input %r wired to two channels" % (p,))
    inputs = list(order) if order is not None else sorted(wired, key=str)
    slots = bytearray(6)
    for s in range(6):
        p = pins[s]
        if p is None:
            slots[s] = inputs.index(pins[0]) if s < 3 else MISSING
        else:
            slots[s] = inputs.index(p)
    for ph in range(3):
        v = slots[ph] if pins[ph] is not None else slots[0]
        if slots[3 + ph] != MISSING and slots[3 + ph] <= v:
            raise ValueError("adc_pins: wire V%d to a lower ADC input than I%d"
                             % (ph + 1, ph + 1))
    return inputs, slots


def mux_delay(slots, nch, phase):
    """Sets by which phase's V is sampled before its I in a round-robin of nch
    inputs (0 for an unwired current)."""
    i = slots[3 + phase]
    if i == MISSING:
        return 0.0
    return (i - slots[phase]) / nch


@micropython.viper
def unpack_ring(ring: ptr16, ring_n: int, pos: int, nch: int, slots: ptr8, out: ptr16,
                nsets: int) -> int:
    """nsets sets from a ring of round-robin samples (nch per set, from pos,
    wrapping at ring_n) into out; returns the position after them."""
    k = 0
    while k < nsets:
        s = 0
        while s < 6:
            j = int(slots[s])
            if j == _MISSING:
                out[k * 6 + s] = 2048
            else:
                q = pos + j
                if q >= ring_n:
                    q -= ring_n
                out[k * 6 + s] = ring[q] & 0xFFF
            s += 1
        pos += nch
        if pos >= ring_n:
            pos -= ring_n
        k += 1
    return pos


@micropython.viper
def put_slot(src: ptr16, out: ptr16, slot: int, nsets: int):
    """One input's samples (src[k]) into slot of each set (mid_slot() fills
    an unwired slot)."""
    k = 0
    while k < nsets:
        out[k * 6 + slot] = src[k] & 0xFFF
        k += 1


@micropython.viper
def mid_slot(out: ptr16, slot: int, nsets: int):
    k = 0
    while k < nsets:
        out[k * 6 + slot] = 2048
        k += 1
