"""Three-phase metering: V/I samples -> Vrms, Irms, P, S, PF, f, THD, integer Wh.

Samples arrive as interleaved sets of 6 unsigned 12-bit ADC readings
(V1 V2 V3 I1 I2 I3) at a fixed set rate (hardware-paced on a board; synthesised
by the sim HAL on the unix port). feed() runs the viper kernel over a chunk:
per phase it accumulates sum v, sum v^2, sum i, sum i^2, sum v i of mid-scale
centred samples, the voltage first shifted by phase compensation (linear
interpolation between the previous and current V sample by phi/256 of a set).
Every accumulator is two 32-bit words (base 2^29) so nothing overflows on a
32-bit MCU however long a block runs; nothing is allocated per sample.

Blocks end on the Nth rising zero crossing of V1 (hysteresis), so each block
holds whole mains cycles: the DC offset then cancels exactly in
sum x^2 - (sum x)^2 / n (EmonLibCM practice). With no crossing for
2.5 expected blocks the block is closed as "no AC". poll() turns a finished block
into engineering values (floats, once per block; allowed to allocate), energy
into integer Wh with the remainder carried, and current THD from Goertzel
filters at the 1st, 3rd, 5th and 7th harmonic on the block's I1 samples.
"""

from array import array
from math import cos, pi, sqrt

import micropython
from micropython import const

_MID = const(2048)
_BASE = const(1 << 29)  # two-word accumulators: value = (hi - _HB) * 2^29 + lo
_HB = const(1 << 28)    # hi-word bias: every stored word stays non-negative, so a
#                         ptr32 load reads the same value on 32- and 64-bit ports
# State words (array 'i').
_S_N = const(0)          # samples in the open block
_S_ABOVE = const(1)      # V1 above the upper hysteresis level
_S_HYST = const(2)       # hysteresis half-band (counts)
_S_CYC = const(3)        # rising crossings in the open block
_S_CPB = const(4)        # cycles per block
_S_READY = const(5)      # 1: a block is waiting in the snapshot
_S_FRAC0 = const(6)      # open block start: fraction (Q8) of a set before sample 0
_S_NMAX = const(7)       # close the block as no-AC after this many sets
_S_NOAC = const(8)       # snapshot closed without AC
_S_SNAP_N = const(9)     # snapshot: sets, start/end fraction (Q8)
_S_SNAP_F0 = const(10)
_S_SNAP_F1 = const(11)
_S_WAVE = const(12)      # I1 samples stored in the wave buffer
_S_WMAX = const(13)      # samples per half of the wave double buffer
_S_WBASE = const(14)     # half being written (0 or WMAX)
_S_SNAP_W = const(15)    # snapshot: I1 samples and the half they are in
_S_SNAP_WB = const(23)
_S_SNAP_C = const(24)    # snapshot: mains cycles the block really holds
_S_PHI = const(16)       # 16..18 phase compensation per phase (Q8, 0..256)
_S_VPREV = const(20)     # 20..22 previous centred V per phase
_ACC = const(32)         # 32..61: per phase 5 sums x (lo, hi)
_SNAP = const(64)        # 64..93: snapshot of the accumulators
_NWORDS = const(96)
_KEYS = ("v1", "v2", "v3", "i1", "i2", "i3", "p1", "p2", "p3",
         "freq", "p", "s", "pf", "ac", "wh", "thd_i")


@micropython.viper
def _zero(st: ptr32, base: int):
    q = 0
    while q < 30:
        st[base + q] = 0
        st[base + q + 1] = _HB
        q += 2


@micropython.viper
def _close(st: ptr32, noac: int, frac: int):
    # Snapshot the open block's sums and start a new block.
    q = 0
    while q < 30:
        st[_SNAP + q] = st[_ACC + q]
        q += 1
    _zero(st, _ACC)
    # A block waiting for poll() keeps the next one open past its cycles (a
    # stalled main loop): the crossings it really holds, not the nominal count.
    st[_S_SNAP_C] = st[_S_CYC] - 1
    st[_S_SNAP_N] = st[_S_N]
    st[_S_SNAP_F0] = st[_S_FRAC0]
    st[_S_SNAP_F1] = frac
    st[_S_SNAP_W] = st[_S_WAVE]
    st[_S_SNAP_WB] = st[_S_WBASE]
    st[_S_WBASE] = st[_S_WMAX] - st[_S_WBASE]  # flip the wave double buffer
    st[_S_WAVE] = 0
    st[_S_NOAC] = noac
    st[_S_READY] = 1
    st[_S_N] = 0
    st[_S_FRAC0] = frac


@micropython.viper
def _feed(buf: ptr16, nsets: int, st: ptr32, wave: ptr16) -> int:
    """Accumulate nsets interleaved sets; returns 1 if a block finished."""
    done = 0
    k = 0
    while k < nsets:
        b = k * 6
        # Zero-crossing of V1 first: a set that completes a cycle starts the next block.
        v = int(buf[b]) - _MID
        vp = int(st[_S_VPREV]) - _MID
        h = int(st[_S_HYST])
        if st[_S_ABOVE]:
            if v < 0 - h:
                st[_S_ABOVE] = 0
        elif v > h and vp <= h:
            st[_S_ABOVE] = 1
            frac = ((v - h) << 8) // (v - vp)  # crossing of +h, Q8 of a set before this one
            st[_S_CYC] = st[_S_CYC] + 1
            if st[_S_CYC] == 1:
                # First crossing: discard the partial cycle before it.
                _zero(st, _ACC)
                st[_S_N] = 0
                st[_S_WAVE] = 0
                st[_S_FRAC0] = frac
            elif st[_S_CYC] > st[_S_CPB] and not st[_S_READY]:
                _close(st, 0, frac)
                st[_S_CYC] = 1
                done = 1
        p = 0
        while p < 3:
            raw = int(buf[b + p])
            v = raw - _MID
            i = int(buf[b + 3 + p]) - _MID
            vp = int(st[_S_VPREV + p]) - _MID
            st[_S_VPREV + p] = raw  # stored unsigned (see _HB)
            vc = vp + ((int(st[_S_PHI + p]) * (v - vp)) >> 8)
            a = _ACC + 10 * p
            # Five two-word sums, written out: a viper call per sum costs more
            # than the sum. lo stays in [0, 2^29): |x| < 2^29, one carry or borrow.
            lo = int(st[a + 0]) + (vc)
            if lo >= _BASE:
                lo -= _BASE
                st[a + 1] = int(st[a + 1]) + 1
            elif lo < 0:
                lo += _BASE
                st[a + 1] = int(st[a + 1]) - 1
            st[a + 0] = lo
            lo = int(st[a + 2]) + (vc * vc)
            if lo >= _BASE:
                lo -= _BASE
                st[a + 3] = int(st[a + 3]) + 1
            elif lo < 0:
                lo += _BASE
                st[a + 3] = int(st[a + 3]) - 1
            st[a + 2] = lo
            lo = int(st[a + 4]) + (i)
            if lo >= _BASE:
                lo -= _BASE
                st[a + 5] = int(st[a + 5]) + 1
            elif lo < 0:
                lo += _BASE
                st[a + 5] = int(st[a + 5]) - 1
            st[a + 4] = lo
            lo = int(st[a + 6]) + (i * i)
            if lo >= _BASE:
                lo -= _BASE
                st[a + 7] = int(st[a + 7]) + 1
            elif lo < 0:
                lo += _BASE
                st[a + 7] = int(st[a + 7]) - 1
            st[a + 6] = lo
            lo = int(st[a + 8]) + (vc * i)
            if lo >= _BASE:
                lo -= _BASE
                st[a + 9] = int(st[a + 9]) + 1
            elif lo < 0:
                lo += _BASE
                st[a + 9] = int(st[a + 9]) - 1
            st[a + 8] = lo
            p += 1
        w = st[_S_WAVE]
        if w < st[_S_WMAX] and not (st[_S_N] & 1):  # every 2nd set: 1200/s is plenty for the 7th
            wave[st[_S_WBASE] + w] = int(buf[b + 3])
            st[_S_WAVE] = w + 1
        st[_S_N] = st[_S_N] + 1
        if st[_S_N] > st[_S_NMAX] and not st[_S_READY]:
            _close(st, 1, 0)
            st[_S_CYC] = 0
            done = 1
        k += 1
    return done


@micropython.viper
def _goertzel(wave: ptr16, n: int, coef_q12: int, out: ptr32):
    """Goertzel recursion on n samples (scaled by 1/4 to keep 32-bit headroom)."""
    s1 = 0
    s2 = 0
    k = 0
    while k < n:
        x = (int(wave[k]) - _MID) >> 2
        s0 = x + ((coef_q12 * s1) >> 12) - s2
        s2 = s1
        s1 = s0
        k += 1
    out[0] = s1
    out[1] = s2


def phase_comp(sensor_lead_deg, mux_delay_sets, set_rate_hz, nominal_hz=50):
    """phi_q8 for a current sensor leading by sensor_lead_deg and V sampled
    mux_delay_sets before I: delays V by the sum, which must lie in 0..1 set."""
    d = sensor_lead_deg / 360.0 * set_rate_hz / nominal_hz + mux_delay_sets
    if not 0 <= d <= 1:
        raise ValueError("phase compensation %.3f sets outside 0..1" % d)
    return int(round(256 * (1 - d)))


def burst_sets(set_rate_hz, nominal_hz, cycles):
    """Sets one burst must hold to end in a block (or a no-AC report) wherever
    in the cycle it starts: up to one cycle to the first rising crossing, then
    the block's cycles at 45 Hz (55 Hz on 60 Hz mains)."""
    return int((1.1 + cycles * 1.12) * set_rate_hz / nominal_hz) + 2


class Meter:
    """Metering for one 3-phase feeder. See the module docstring for the method.

    set_rate_hz: sample sets per second; nominal_hz: 50 or 60; cycles: per block.
    cal: per channel (V1 V2 V3 I1 I2 I3) units per ADC count; phi_q8: per phase
    interpolation weight of the current V sample (256: no shift; 256 (1 - d) to
    delay V by d of a set), see phase_comp().
    """

    def __init__(self, set_rate_hz, nominal_hz=50, cycles=5, cal=None, phi_q8=(256, 256, 256),
                 hyst_counts=40, energy_wh=0, noac_cycles=None):
        if not 500 <= set_rate_hz <= 20000:
            raise ValueError("set_rate_hz %r outside 500..20000" % (set_rate_hz,))
        if nominal_hz not in (50, 60):
            raise ValueError("nominal_hz %r is not 50 or 60" % (nominal_hz,))
        if not 1 <= cycles <= 20:
            raise ValueError("cycles %r outside 1..20" % (cycles,))
        self.fs = set_rate_hz
        self.nominal = nominal_hz
        self.cal = list(cal) if cal else [1.0] * 6
        if len(self.cal) != 6:
            raise ValueError("cal needs 6 values (V1 V2 V3 I1 I2 I3), got %d" % len(self.cal))
        self.st = array("i", bytes(4 * _NWORDS))  # from bytes: no temporary list
        per_block = int(set_rate_hz * cycles / 90) + 2  # every 2nd set, room for 45 Hz blocks
        self.wave = array("H", bytes(4 * per_block))
        self.st[_S_WMAX] = per_block
        self.st[_S_CPB] = cycles
        self.st[_S_HYST] = hyst_counts
        # No AC: close the block after this many nominal cycles without one
        # (2.5 blocks while streaming; a burst board passes what one burst holds).
        noac = 2.5 * cycles if noac_cycles is None else noac_cycles
        if not 1.2 <= noac <= 2.5 * cycles + 1:
            raise ValueError("noac_cycles %r outside 1.2..%.1f" % (noac, 2.5 * cycles + 1))
        self.st[_S_NMAX] = int(noac * set_rate_hz / nominal_hz)
        self.set_phase(phi_q8)
        self.st[_S_ABOVE] = 1  # wait for V1 to go low first: the first rise is a whole one
        for p in range(3):
            self.st[_S_VPREV + p] = _MID
        _zero(self.st, _ACC)
        self._g = array("i", [0, 0])
        self.energy_wh = int(energy_wh)
        self.energy_rem_j = 0.0
        self.ac = False
        # poll() fills this dict in place (one table, allocated once): a
        # caller that keeps a block's values copies them.
        self.values = dict.fromkeys(_KEYS)

    def set_phase(self, phi_q8):
        """Phase compensation per phase (see phase_comp)."""
        for p in range(3):
            if not 0 <= phi_q8[p] <= 256:
                raise ValueError("phi_q8 %r outside 0..256" % (phi_q8[p],))
            self.st[_S_PHI + p] = phi_q8[p]

    def restart(self):
        """Drop the open block (the samples that follow are not contiguous with
        it: a burst board's next burst); a finished block waiting for poll() and
        the energy stay."""
        st = self.st
        _zero(st, _ACC)
        st[_S_N] = 0
        st[_S_CYC] = 0
        st[_S_ABOVE] = 1
        st[_S_WAVE] = 0
        st[_S_FRAC0] = 0

    def burst_sets(self):
        return burst_sets(self.fs, self.nominal, self.st[_S_CPB])

    def feed(self, buf, nsets):
        """Run the kernel over nsets sets in buf (array 'H'); allocation-free."""
        return _feed(buf, nsets, self.st, self.wave)

    def _sum(self, k):
        return (self.st[k + 1] - _HB) * _BASE + self.st[k]

    def poll(self, dt_s=None):
        """If a block finished: compute the values and return them (self.values,
        reused for every block), else None.

        Energy counts the block's power over the block's own length, or over
        dt_s when given (a burst board: the time since the previous burst)."""
        st = self.st
        if not st[_S_READY]:
            return None
        n = st[_S_SNAP_N]
        noac = st[_S_NOAC]
        c = self.cal
        out = self.values
        p_tot = 0.0
        s_tot = 0.0
        for p in range(3):
            b = _SNAP + 10 * p
            sv, svv, si, sii, svi = (self._sum(b), self._sum(b + 2), self._sum(b + 4),
                                     self._sum(b + 6), self._sum(b + 8))
            vr = sqrt(max(svv - sv * sv / n, 0) / n) * c[p] if n else 0.0
            ir = sqrt(max(sii - si * si / n, 0) / n) * c[3 + p] if n else 0.0
            pw = (svi - sv * si / n) / n * c[p] * c[3 + p] if n else 0.0
            out[_KEYS[p]] = vr
            out[_KEYS[3 + p]] = ir
            out[_KEYS[6 + p]] = pw
            p_tot += pw
            s_tot += vr * ir
        # Block length in sets, from crossing to crossing with sub-set fractions.
        dur_sets = n + (st[_S_SNAP_F0] - st[_S_SNAP_F1]) / 256.0
        self.ac = not noac and dur_sets > 0
        cycles = st[_S_SNAP_C]
        out["freq"] = cycles * self.fs / dur_sets if self.ac else 0.0
        out["p"] = p_tot
        out["s"] = s_tot
        out["pf"] = p_tot / s_tot if s_tot > 1e-9 else 0.0
        out["ac"] = self.ac
        if dt_s is not None:
            dt = dt_s
        else:
            dt = dur_sets / self.fs if self.ac else n / self.fs
        if p_tot > 0:
            self.energy_rem_j += p_tot * dt
            while self.energy_rem_j >= 3600.0:
                self.energy_rem_j -= 3600.0
                self.energy_wh += 1
        out["wh"] = self.energy_wh
        out["thd_i"] = self._thd(out["freq"]) if self.ac else 0.0
        st[_S_READY] = 0
        return out

    def _thd(self, f):
        n = self.st[_S_SNAP_W]
        # Whole cycles only: a long block (late poll) fills the wave buffer
        # part-way through a cycle.
        per = self.fs / 2.0 / f if f > 0 else 0.0
        if per > 0 and n > per:
            n = int(int(n / per) * per + 0.5)
        if n < 16:
            return 0.0
        base = self.st[_S_SNAP_WB]
        wave = memoryview(self.wave)[base:base + n]
        mags = []
        for h in (1, 3, 5, 7):
            w = 2 * pi * h * f / (self.fs / 2.0)  # the wave holds every 2nd set
            if w >= pi:
                mags.append(0.0)
                continue
            coef = int(round(2 * cos(w) * 4096))
            _goertzel(wave, n, coef, self._g)
            s1, s2 = self._g[0], self._g[1]
            c2 = coef / 4096.0
            mags.append(sqrt(max(s1 * s1 + s2 * s2 - c2 * s1 * s2, 0.0)))
        if mags[0] <= 0:
            return 0.0
        return sqrt(mags[1] ** 2 + mags[2] ** 2 + mags[3] ** 2) / mags[0]
