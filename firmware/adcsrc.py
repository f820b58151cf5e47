"""What every metering sample source shares: the viper copies from a board's
raw ADC layout into the meter's sets.

The meter takes interleaved sets of 6 unsigned 12-bit samples (V1 V2 V3 I1 I2
I3). A source is one of two kinds:

- streaming (`burst = False`; the sim ADC, RP2040 ADC FIFO + DMA): take(buf, n)
  returns the sets ready now (0..n), each call contiguous with the last; a lost
  stretch (the DMA lapped the reader) counts one in `gaps`, and the meter drops
  its open block.
- burst (`burst = True`; ESP32 timed reads, STM32 ADC.read_timed_multi):
  take(buf, n) blocks for one contiguous burst of n sets. Each burst is one
  block; the energy counts the burst's power over the time between bursts.

The wiring (config adc_pins) is mapped by adcmap.py.
"""

import micropython
from micropython import const

_MISSING = const(255)  # adcmap.MISSING


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
