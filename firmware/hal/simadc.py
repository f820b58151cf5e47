"""Synthetic ADC for the unix port: a simulated device with physics, standing in
for a board's ADC with the same source interface (adcsrc.py): streaming in real
time like the RP2040's DMA ring, or in bursts like an ESP32 or STM32 board."""

from array import array
from time import ticks_diff, ticks_us

import micropython


# One cycle of sin in Q14, 256 points: the synthetic ADC runs on integers (DDS).
def _table():
    from math import pi, sin
    t = array("h", bytes(512))
    for k in range(256):
        t[k] = int(round(16384 * sin(2 * pi * k / 256)))
    return t


class Adc:
    """Synthetic 12-bit ADC for metering on the unix port (a simulated device).

    Produces interleaved sets (V1 V2 V3 I1 I2 I3) of a balanced 3-phase supply
    from an electrical state: peak counts, current lag (Q16 of a cycle), 3rd
    harmonic on the currents, frequency; with quantisation and a small seeded
    noise. Phase accumulators are 32-bit integers (Q24 of a cycle), so filling a
    buffer allocates nothing. set_state() comes from the plant link (HIL) or
    from the built-in load model (see Device).
    """

    def __init__(self, set_rate_hz, seed=1, burst=False):
        self.rate = set_rate_hz
        self.burst = burst
        self.gaps = 0
        self.t_last = ticks_us()
        self.owed = 0  # sets due, in units of 1/1e6 set
        self.tab = _table()
        self.st = array("i", [0] * 8)  # phase, step, v_pk, i_pk, lag, h3 (Q8), rng
        self.st[6] = seed
        self.set_state(0, 0, 0.0, 50.0)

    def set_state(self, v_pk_counts, i_pk_counts, lag_deg, freq_hz, h3_frac=0.0):
        st = self.st
        st[1] = int(freq_hz * (1 << 24) / self.rate)
        st[2] = int(v_pk_counts)
        st[3] = int(i_pk_counts)
        st[4] = int((lag_deg % 360.0) / 360.0 * 256) & 255
        st[5] = int(h3_frac * 256)

    def fill(self, buf, nsets):
        _fill(buf, nsets, self.st, self.tab)

    def mux_delay(self, phase):
        return 0.0  # all channels of a set at the same instant

    def take(self, buf, nsets):
        """Streaming: the sets due since the last call at the set rate (at most
        nsets). Burst: nsets contiguous sets now, the waveform having run on
        in between (a burst starts anywhere in the cycle, as on a board)."""
        now = ticks_us()
        el = ticks_diff(now, self.t_last)
        self.t_last = now
        if self.burst:
            st = self.st
            st[0] = (st[0] + (el * self.rate // 1000000) * st[1]) & 0xFFFFFF
            _fill(buf, nsets, st, self.tab)
            return nsets
        self.owed += el * self.rate
        n = self.owed // 1000000
        if n > nsets:
            n = nsets
        if n:
            _fill(buf, n, self.st, self.tab)
            self.owed -= n * 1000000
        return n


@micropython.viper
def _fill(buf: ptr16, n: int, st: ptr32, tab: ptr16):
    ph = int(st[0])
    step = int(st[1])
    vpk = int(st[2])
    ipk = int(st[3])
    lag = int(st[4])
    h3 = int(st[5])
    rng = int(st[6])
    k = 0
    while k < n:
        idx = (ph >> 16) & 255
        p = 0
        while p < 3:
            a = (idx - p * 85) & 255  # 85/256 ~ 120 deg
            sv = int(tab[a])
            if sv > 32767:
                sv -= 65536
            ai = (a - lag) & 255
            si = int(tab[ai])
            if si > 32767:
                si -= 65536
            s3 = int(tab[(3 * ai) & 255])
            if s3 > 32767:
                s3 -= 65536
            rng = (rng * 25173 + 13849) & 0xFFFF  # 16-bit LCG: small ints only
            noise = ((rng >> 8) & 3) - 1
            buf[k * 6 + p] = 2048 + ((vpk * sv) >> 14) + noise
            buf[k * 6 + 3 + p] = 2048 + ((ipk * si + ((ipk * h3) >> 8) * s3) >> 14) + noise
            p += 1
        ph = (ph + step) & 0xFFFFFF
        k += 1
    st[0] = ph
    st[6] = rng


