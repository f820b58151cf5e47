"""Outputs: what the device drives, decided on the device.

Target: each output of the profile (regmap.outputs) follows the host's command
while armed, and its safe value (or holds, per safe_hold_mask) while disarmed:
at boot, after a comm-loss trip, or when the host writes arm = 0.

Shaping (profile RULES), applied to every target, armed or not:
- analog ("a"): move out of the resonance band to its nearer edge, clamp to
  min..max (when non-zero; the limits win over the band), then ramp at most
  rate x dt towards it;
- run relay ("r"): minimum on and off times and a starts-per-hour limit; a
  command held back by them shows as interlock bit 2;
- pass ("p"): as commanded.
Power-up: the safe values boot with every run output off (run_safe 0); a board
file may set a safe value to run per output (settings), and a start delay per
unit plus a stagger per output (config start_delay_s, start_stagger_s) keeps
on/off outputs off after boot, so a train restarts one unit after the other.
Interlocks, independent of the host, bits in input 4 and the status word (the
profile's rules live in interlock_scr.py and interlock_compressor.py, loaded by
those profiles only):
  bit 0 scr: catalyst below min_catalyst_temp_c (or temperature unknown) -> no NH3
  bit 1 scr: flue-gas flow below min_flue_gas_flow_nm3h (or unknown) -> no NH3
  bit 2 a run relay command is delayed (min on/off time, starts per hour, the
        start delay after boot)
  bit 3 compressor: discharge pressure above max_pressure_bar -> unloaded
        (released 0.2 bar below)
  bit 4 scr: NH3 ceiling. The measured NH3 flow q (input 38) may not exceed
        L = min(nh3_flow_max_kgh, nh3_molar_ratio_max x the stoichiometric
        NH3 of the measured inlet NOx (as NO2) at the measured flue-gas flow:
        cap x nox_mg_nm3 x flow_nm3h x 1e-6 x 17.03 / 46.01 kg/h). While
        q > L the valve's limit closes by (q - L) / q of itself per 0.25 s (at
        least 0.01 % per update, an update counting at most 0.25 s; it starts
        from the valve's position): with a linear valve the overdose dies out
        with a 0.25 s time constant. Once q <= L the limit opens again by
        the headroom (L - q) / L of itself (+ 1 %) per 0.25 s, at most at
        valve_rate_pct_s, and is gone at 100 %.
        A flow above L for 5 s without a break (a leaking or stuck valve,
        which the limit cannot close) also drops dosing_enable, until it is
        back under L. Unknown NH3 flow or inlet NOx (NE43 bad or stale): valve
        closed and dosing off. While bits 0 or 1 or an unknown reading hold
        the valve closed there is no limit (the valve reopens at its ramp).
        The bit shows while q > L, a reading is unknown, or the limit holds the
        valve below its target.
  bit 5 compressor: discharge pressure unknown (NE43 bad or stale) -> unloaded,
        whatever the last reading was; loads again as soon as it is good.
  "Stale": no input sample (a board's input scan, a plant-link message) for
  2 s; the interlocks then treat every reading as bad.
  dosing_blocked (scr) shows bits 0, 1 and 4; high_pressure_unload bit 3.
Values are raw register units (0.01 % for positions and speeds, 0/1 for relays),
integers throughout; the NH3 ceiling is computed in small ints (below 2^30,
the 32-bit ports' limit: nothing is allocated).

Time: update(now_ms) takes a tick in ms (time.ticks_ms on a board, any clock in
tests). Only the delta since the previous update is taken with ticks_diff (a
few ms, far inside its +-2^29 ms range); every age the relay rules need (time
in the present state, age of each start in the last hour) is a counter advanced
by that delta and saturated, so nothing breaks when ticks wrap at 2^30 ms
(12.4 days) on 32-bit ports.
"""

from array import array
from micropython import const
from time import ticks_diff, ticks_ms

from regmap import COIL, DISCRETE
from regmap import HR_ARM as _ARM, HR_HOLD_MASK as _HOLD_MASK

IL_RELAY = 4  # the other bits: interlock_scr.py, interlock_compressor.py
_HOUR_MS = const(3600000)
_STALE_MS = const(2000)  # no input sample for this long: every reading counts as bad
# Ages saturate here: above every min on/off time (at most 7200 s) and a small
# int on every port (< 2^30).
_AGE_MAX_MS = const(86400000)


class Outputs:
    def __init__(self, bank, profile, driver=None, now_ms=None, start_delay_ms=0, stagger_ms=0):
        """start_delay_ms, stagger_ms: after boot, the k-th on/off output (a
        coil command: run relays, dosing) stays off for start_delay_ms +
        k x stagger_ms, armed or not (interlock bit 2 meanwhile), so units and
        the pumps of one unit restart one after the other after a power cut."""
        self.bank = bank
        self.profile = profile
        self.driver = driver  # driver(index, raw) or None
        # Per-profile interlocks live in their own modules (a motor or FGD
        # device never loads their code), imported first: their code lands
        # on the heap before the map walks' garbage, not between it.
        ilk = None
        if profile == "scr":
            from interlock_scr import ScrInterlock as ilk
        elif profile == "compressor":
            from interlock_compressor import CompressorInterlock as ilk
        import regmap
        outs = regmap.outputs(profile)
        rules = regmap.rules(profile)
        self.n = len(outs)
        # One walk of the map for every name this module needs.
        names = []
        for o in outs:
            names.extend(o)
        for r in rules:
            for x in r[1:]:
                if x is not None and x not in names:
                    names.append(x)
        found = bank.lookup(names)
        where = {}
        for k in range(len(names)):
            where[names[k]] = found[k]
        self.cmd_coil = []
        self.fb_di = []
        self.cmd_addr = array("H", [0] * self.n)
        self.safe_addr = array("H", [0] * self.n)
        self.fb_addr = array("H", [0] * self.n)
        # Per output: kind and the holding addresses of its settings (0xFFFF: none).
        self.kind = []
        self.reg = []
        for i in range(self.n):
            cmd, safe, fb = where[outs[i][0]], where[outs[i][1]], where[outs[i][2]]
            self.cmd_coil.append(cmd[0] == COIL)
            self.cmd_addr[i] = cmd[1]
            self.safe_addr[i] = safe[1]
            self.fb_di.append(fb[0] == DISCRETE)
            self.fb_addr[i] = fb[1]
            r = rules[i]
            self.kind.append(r[0])
            regs = array("H", [0xFFFF] * 6)
            for k in range(len(r) - 1):
                if r[1 + k] is not None:
                    regs[k] = where[r[1 + k]][1]
            self.reg.append(regs)
        del where, found, names
        self.ilk = None if ilk is None else ilk(self)
        self.in_age_ms = 0  # since the last input sample (bank.samples), saturating
        self._samples = bank.samples
        self.actual = array("i", [0] * self.n)
        self.carry = array("i", [0] * self.n)
        # Per output: ms in the present state (saturating at _AGE_MAX_MS), and
        # for run relays the ages in ms of the starts of the last hour, oldest first.
        self.age_ms = array("i", [_AGE_MAX_MS] * self.n)
        self.starts = [[] for _ in range(self.n)]
        self.hold_off_ms = array("i", [0] * self.n)
        k = 0
        for i in range(self.n):
            if self.cmd_coil[i]:
                self.hold_off_ms[i] = start_delay_ms + k * stagger_ms
                k += 1
        self.up_ms = 0  # since boot, saturating
        self.interlocks = 0
        self.safe_state = True
        self._last_ms = ticks_ms() if now_ms is None else now_ms
        # Boot: relays may switch at once (no history), analog outputs start at target.
        self._boot = True
        self.update(self._last_ms)
        self._boot = False

    def armed(self):
        return self.bank.hr[_ARM] == 1

    def _target(self, i, armed, hold):
        bank = self.bank
        if armed:
            if self.cmd_coil[i]:
                return bank.co[self.cmd_addr[i]]
            return bank.hr[self.cmd_addr[i]]
        if hold & (1 << i):
            return self.actual[i]
        return bank.hr[self.safe_addr[i]]

    def _analog(self, i, target, dt_ms):
        hr = self.bank.hr
        reg = self.reg[i]
        # Out of the resonance band first, then the clamps: the limits win.
        if reg[4] != 0xFFFF and reg[5] != 0xFFFF:
            lo, hi = hr[reg[4]], hr[reg[5]]
            if lo < target < hi:
                target = lo if target - lo < hi - target else hi
        if target:
            if reg[2] != 0xFFFF and target < hr[reg[2]]:
                target = hr[reg[2]]
            if reg[3] != 0xFFFF and target > hr[reg[3]]:
                target = hr[reg[3]]
        if self._boot:
            return target
        cur = self.actual[i]
        if target == cur:
            self.carry[i] = 0
            return target
        rate = reg[0] if target > cur else reg[1]
        if rate == 0xFFFF:
            return target
        # Budget in milli-units with the remainder carried: slow ramps on a fast
        # tick still move (0.1 %/s at 50 ms is half a unit per tick).
        budget = hr[rate] * dt_ms + self.carry[i]
        step = budget // 1000
        self.carry[i] = budget - step * 1000
        if target > cur + step:
            return cur + step
        if target < cur - step:
            return cur - step
        self.carry[i] = 0
        return target

    def _age(self, dt):
        """Advance every state age and start age by dt ms (saturating; starts
        older than an hour are forgotten)."""
        age = self.age_ms
        for i in range(self.n):
            a = age[i] + dt
            age[i] = a if a < _AGE_MAX_MS else _AGE_MAX_MS
            st = self.starts[i]
            for k in range(len(st)):
                st[k] += dt
            while st and st[0] >= _HOUR_MS:
                st.pop(0)

    def _relay(self, i, target):
        cur = self.actual[i]
        target = 1 if target else 0
        if target == cur or self._boot:
            if target and not cur:
                self.starts[i].append(0)
            if target != cur:
                self.age_ms[i] = 0
            return target
        hr = self.bank.hr
        reg = self.reg[i]
        since = self.age_ms[i]
        if target:
            st = self.starts[i]
            if since < hr[reg[1]] * 1000 or len(st) >= hr[reg[2]]:
                self.interlocks |= IL_RELAY
                return cur
            st.append(0)
        elif since < hr[reg[0]] * 1000:
            self.interlocks |= IL_RELAY
            return cur
        self.age_ms[i] = 0
        return target

    def update(self, now_ms=None):
        """Decide, shape and drive every output once; returns True in safe state."""
        now = ticks_ms() if now_ms is None else now_ms
        dt = ticks_diff(now, self._last_ms)
        if dt < 0:  # a caller on another clock (tests) or a time jump: no ramp step
            dt = 0
        self._last_ms = now
        self._age(dt)
        u = self.up_ms + dt
        self.up_ms = u if u < _AGE_MAX_MS else _AGE_MAX_MS
        bank = self.bank
        armed = self.armed()
        hold = bank.hr[_HOLD_MASK]
        self.interlocks = 0
        ilk = self.ilk
        if ilk is not None:
            if bank.samples != self._samples:
                self._samples = bank.samples
                self.in_age_ms = 0
            else:
                a = self.in_age_ms + dt
                self.in_age_ms = a if a < _AGE_MAX_MS else _AGE_MAX_MS
            ilk.check(dt, self.in_age_ms > _STALE_MS)
        for i in range(self.n):
            v = self._target(i, armed, hold)
            if v and self.up_ms < self.hold_off_ms[i]:
                v = 0  # start delay after boot
                self.interlocks |= IL_RELAY
            k = self.kind[i]
            if k == "a":
                v = self._analog(i, v, dt)
            elif k == "r":
                v = self._relay(i, v)
            if ilk is not None:
                v = ilk.gate(i, v)
            self.actual[i] = v
            if self.fb_di[i]:
                bank.di[self.fb_addr[i]] = 1 if v else 0
            else:
                bank.ir[self.fb_addr[i]] = v
            if self.driver is not None:
                self.driver(i, v)
        if ilk is not None:
            ilk.show()
        self.safe_state = not armed
        return self.safe_state
