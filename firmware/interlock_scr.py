"""SCR interlocks (outputs.py's docstring states the rules; bits 0, 1 and 4).

No NH3 below the minimum catalyst temperature or the minimum flue-gas flow, or
while either reading is unknown. The NH3 ceiling: the measured NH3 flow may not
exceed L = min(nh3_flow_max_kgh, nh3_molar_ratio_max x the stoichiometric NH3
of the measured inlet NOx at the measured flue-gas flow); above it the valve's
limit closes, below it the limit opens at the valve's rate.

Raw register units throughout; every product stays below 2^30, the small-int
limit of the 32-bit ports (a larger int would be allocated on the heap).
Loaded only by an SCR device (Outputs picks it by profile).
"""

from micropython import const

from codec import Q_BAD

IL_TEMP = const(1)
IL_FLOW = const(2)
IL_NH3 = const(16)
_OPEN = const(0x7FFF)  # the valve limit is off
_FULL = const(10000)  # 100.00 % in valve raw units
_FLOOR = const(100)  # 1 %: a limit at 0 still opens again
_SHUTOFF_MS = const(5000)  # over the ceiling this long without a break: dosing_enable off
_CUT_MS = const(250)  # the limit's time constant; a longer update cuts as if this long
# NOx mass flow in units of 102.4 mg/h (raw 0.1 mg/Nm3 x Nm3/h / 1024) -> NH3 in
# 0.01 kg/h at a molar ratio of 0.01: divide by 1e6 x M_NO2 / (102.4 x M_NH3)
# = 1e6 x 46.01 / (102.4 x 17.03) = 26383.9, rounded up (the ceiling errs low).
_NH3_DIV = const(26384)
_FLOW_SAT = const(0x7FFFFF)  # a flow above 8.39e6 Nm3/h counts as that (errs low)
# Addresses (self.a), in lookup order.
_T = const(0)
_F = const(1)
_Q = const(2)
_NOX = const(3)
_TMIN = const(4)
_FMIN = const(5)
_BLOCKED = const(6)
_QMAX = const(7)
_RATIO = const(8)
_RATE = const(9)


class ScrInterlock:
    def __init__(self, outputs):
        self.out = outputs
        bank = outputs.bank
        meas = ("flue_gas_temp_c", "flue_gas_flow_nm3h", "nh3_flow_kgh", "nox_in_mg_nm3")
        found = bank.lookup(meas + ("min_catalyst_temp_c", "min_flue_gas_flow_nm3h",
                                    "dosing_blocked", "nh3_flow_max_kgh", "nh3_molar_ratio_max",
                                    "valve_rate_pct_s"))
        self.a = [f[1] for f in found]
        self.slots = bank.quality_slots(meas)
        self.limit = _OPEN  # the valve limit (raw 0.01 %), _OPEN: none
        self.shut = False   # NH3 flow or inlet NOx unknown: valve closed, dosing off
        self.over_ms = 0    # the NH3 flow has been above its ceiling this long, saturating
        self.stale = False

    def _bad(self, k):
        return self.stale or self.out.bank.get_quality(self.slots[k]) == Q_BAD

    def ceiling(self):
        """L in raw 0.01 kg/h."""
        bank, a = self.out.bank, self.a
        ir, hr = bank.ir, bank.hr
        fh = ir[a[_F]]
        f = _FLOW_SAT if fh >= 128 else (fh << 16) | ir[a[_F] + 1]
        rn = ir[a[_NOX]]  # 0.1 mg/Nm3
        n = rn * (f >> 10) + ((rn * (f & 1023)) >> 10)  # NOx in 102.4 mg/h, < 5.4e8
        rc = hr[a[_RATIO]]  # molar ratio x 100, <= 200
        m = rc * (n // _NH3_DIV) + rc * (n % _NH3_DIV) // _NH3_DIV
        lim = hr[a[_QMAX]]
        return m if m < lim else lim

    def check(self, dt, stale):
        """Once per Outputs.update, before the outputs are shaped: set the bits
        and move the valve limit by dt ms."""
        out, a = self.out, self.a
        ir, hr = out.bank.ir, out.bank.hr
        self.stale = stale
        t = ir[a[_T]]
        t = t - 0x10000 if t & 0x8000 else t
        tmin = hr[a[_TMIN]]
        tmin = tmin - 0x10000 if tmin & 0x8000 else tmin
        if t < tmin or self._bad(0):
            out.interlocks |= IL_TEMP
        fh, fl = ir[a[_F]], ir[a[_F] + 1]
        mh, ml = hr[a[_FMIN]], hr[a[_FMIN] + 1]
        if fh < mh or (fh == mh and fl < ml) or self._bad(1):
            out.interlocks |= IL_FLOW
        self.shut = self._bad(2) or self._bad(3)
        if self.shut:
            out.interlocks |= IL_NH3
        if self.shut or out.interlocks & (IL_TEMP | IL_FLOW):
            # The valve is closed anyway and reopens at its ramp: no limit.
            self.limit = _OPEN
            self.over_ms = 0
            return
        q = ir[a[_Q]]
        lim = self.ceiling()
        c = self.limit
        d = dt if dt < _CUT_MS else _CUT_MS
        if q > lim:
            m = self.over_ms + dt
            self.over_ms = m if m < _SHUTOFF_MS else _SHUTOFF_MS
            if c == _OPEN:
                c = out.actual[0]  # the limit starts where the valve is
            if d:
                cut = c * (q - lim) // q * d // _CUT_MS  # c <= 10000, q < 2^16
                c -= cut if cut > 0 else 1
                if c < 0:
                    c = 0
            out.interlocks |= IL_NH3
        else:
            self.over_ms = 0
            if c != _OPEN and d:
                # Open again by the headroom (L - q) / L of the limit (+ 1 %,
                # so a limit at 0 opens too) per 0.25 s, at most at the valve's
                # rate: smooth up to L, quick once the command is below it.
                rise = (c + _FLOOR) * (lim - q) // lim * d // _CUT_MS if lim else 0
                d = dt if dt < 10000 else 10000  # rate <= 60000: the product stays < 2^30
                top = hr[a[_RATE]] * d // 1000
                rise = top if rise > top else rise
                c += rise if rise > 0 else 1
                if c >= _FULL:
                    c = _OPEN
        self.limit = c

    def gate(self, i, v):
        """Output i (0 valve, 1 dosing enable) after shaping."""
        out = self.out
        if out.interlocks & (IL_TEMP | IL_FLOW) or self.shut:
            return 0  # no NH3: valve closed and dosing off
        c = self.limit
        if c == _OPEN:
            return v
        if i == 0 and v > c:
            out.interlocks |= IL_NH3
            return c
        if i == 1 and self.over_ms >= _SHUTOFF_MS:
            return 0  # the valve does not bring the flow down: the shut-off valve
        return v

    def show(self):
        out = self.out
        out.bank.di[self.a[_BLOCKED]] = 1 if out.interlocks & (IL_TEMP | IL_FLOW | IL_NH3) else 0
