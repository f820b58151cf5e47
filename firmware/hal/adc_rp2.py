"""RP2040 metering ADC: free-running round-robin conversions, paced by the ADC's
own clock divider, moved by one DMA channel into a RAM ring. Streaming source
(see adcsrc.py): nothing is lost between the device's 10 ms metering jobs.

Registers per the RP2040 datasheet, section 4.9 (ADC) and 2.5 (DMA): the ADC
converts the enabled inputs in ascending order (RROBIN, starting at AINSEL) at
48 MHz / (1 + DIV) conversions per second; the FIFO raises DREQ_ADC; the DMA
channel reads FIFO and writes a 1 KB ring (its write address wraps on the ring's
size, so a late reader can never make it write outside the ring; the buffer is
aligned to 1 KB by allocating twice that and starting at the aligned address).
The samples written so far are the channel's initial count minus what remains
in TRANS_COUNT; the reader keeps its own count, so an overrun (the DMA lapped
the reader) is seen and counted in `gaps`.

Inputs are ADC numbers 0..3 (GPIO26..29; on a Pico, input 3 is VSYS/3), so a
Pico meters 1 V + up to 3 I or 2 V + 2 I.
"""

import rp2
import uctypes
from machine import ADC, mem32
from micropython import const

from adcmap import chan_map, mux_delay
from adcsrc import unpack_ring

_CS = const(0x4004C000)
_FCS = const(0x4004C008)
_FIFO = const(0x4004C00C)
_DIV = const(0x4004C010)
_CS_EN = const(1)
_CS_START_MANY = const(1 << 3)
_FCS_EN = const(1)
_FCS_DREQ_EN = const(1 << 3)
_FCS_UNDER = const(1 << 10)
_FCS_OVER = const(1 << 11)
_DREQ_ADC = const(36)
_RING_BYTES = const(1024)
_RING_N = const(512)
_COUNT = const(0x3FFFFFFF)  # samples per DMA run (a small int); ~31 h at 9.6 kS/s
_ADC_HZ = const(48000000)


class Adc:
    burst = False

    def __init__(self, set_rate_hz, pins):
        inputs, self.slots = chan_map(pins)
        for i in inputs:
            if not isinstance(i, int) or not 0 <= i <= 3:
                raise ValueError("adc_pins: RP2040 ADC inputs are 0..3, got %r" % (i,))
        self.nch = nch = len(inputs)
        self.inputs = inputs
        for i in inputs:
            ADC(i)  # the GPIO becomes an analog input
        self._raw = bytearray(2 * _RING_BYTES)
        off = (-uctypes.addressof(self._raw)) & (_RING_BYTES - 1)
        self.ring = memoryview(self._raw)[off:off + _RING_BYTES]
        self.ring_addr = uctypes.addressof(self._raw) + off
        conv_hz = set_rate_hz * nch
        if conv_hz > 500000:
            raise ValueError("set_rate_hz x inputs = %d conversions/s: the ADC does 500k" % conv_hz)
        div = _ADC_HZ * 256 // conv_hz - 256  # DIV.INT:FRAC (8 fraction bits)
        self.div = div
        self.mask = 0
        for i in inputs:
            self.mask |= 1 << i
        self.dma = rp2.DMA()
        self.gaps = 0
        self.done = 0
        self._start()

    def _start(self):
        mem32[_CS] = 0
        mem32[_FCS] = _FCS_UNDER | _FCS_OVER  # write 1 to clear
        while (mem32[_FCS] >> 16) & 0xF:      # drain the FIFO
            mem32[_FIFO]
        self.dma.active(0)
        ctrl = self.dma.pack_ctrl(size=1, inc_read=False, inc_write=True,
                                  treq_sel=_DREQ_ADC, ring_sel=True, ring_size=10)
        self.dma.config(read=_FIFO, write=self.ring_addr, count=_COUNT, ctrl=ctrl, trigger=True)
        mem32[_FCS] = _FCS_EN | _FCS_DREQ_EN | (1 << 24)  # DREQ at 1 sample
        mem32[_DIV] = self.div
        mem32[_CS] = _CS_EN | (self.inputs[0] << 12) | (self.mask << 16) | _CS_START_MANY
        self.done = 0

    def mux_delay(self, phase):
        return mux_delay(self.slots, self.nch, phase)

    def take(self, buf, nsets):
        nch = self.nch
        remaining = self.dma.count  # TRANS_COUNT: transfers left (rp2.DMA docs)
        written = _COUNT - remaining
        if mem32[_FCS] & _FCS_OVER or written - self.done > _RING_N - nch \
                or remaining < (1 << 20):
            self.gaps += 1  # overrun, or the run is nearly spent: start clean
            self._start()
            return 0
        n = (written - self.done) // nch
        if n > nsets:
            n = nsets
        if n:
            unpack_ring(self.ring, _RING_N, self.done % _RING_N, nch, self.slots, buf, n)
            self.done += n * nch
        return n
