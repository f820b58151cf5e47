"""Compressed air. Typical baseline: cascaded pressure switches (each fixed machine loads
below its cut-in and unloads above its cut-out, bands stacked downwards) with
the VSD machine on a PI at the top of the cascade; motors stop after a run-on
time unloaded. Typical of stations with no master controller: stacked bands
run the header 20-25 psi (1.4-1.7 bar) above what the users need (docs/models.md
section 2), here about 7.7 bar(g) for a 6.0 bar minimum. Best-practice
baseline: the same switches with tight staggered bands and the VSD as trim
inside them (StaggeredCascadeBaseline).

Size (385 lines): three strategies of one plant (typical, best-practice, optimized) and
the header-pressure reading they share.

Size: past the ~300-line mark because the sequencer's staging, set point and
control-gap rules share one state and read as one machine; the baseline and
the header-pressure check are small."""

import math

from cython_ext import load
from controller.loops.base import STUCK_N, Plausible, Strategy, good, pi_step

MACHINES = ("c1", "c2", "c3")
P_RANGE_BAR = (0.5, 11.0)   # plausible header pressure (g); outside: the transmitter
P_RATE_BAR_S = 0.5          # the header (13 m3) moves ~0.01 bar/s on a 10 m3/min step
BLIND_S = 30.0              # no plausible pressure this long (plant s): unload everything


class HeaderPressure:
    """The header pressure from the first of several transmitters (in order)
    whose reading is plausible (range, rate of change, not frozen), else NaN:
    a broken transmitter is replaced by a redundant one, never by a guess."""

    def __init__(self, order):
        self.order = order
        self._checks = {m: Plausible(*P_RANGE_BAR, max_rate=P_RATE_BAR_S, stuck_n=STUCK_N)
                        for m in order}

    def read(self, snap, t_s):
        vals = [self._checks[m].check(snap[m].get("discharge_pressure_bar"), t_s)
                for m in self.order]  # every one, so each keeps its own history
        return next((v for v in vals if good(v)), math.nan)


class CascadeBaseline(Strategy):
    TRACK = {("vsd", "speed_ref_pct"): ("pid", 1.0)}
    BANDS = {"c1": (7.4, 8.1), "c2": (7.2, 7.9), "c3": (7.0, 7.7)}
    VSD_SP = 7.8
    RUN_ON_S = 600.0

    def __init__(self, params=None):
        super().__init__(params)
        self.loaded = {m: False for m in MACHINES}
        self.unloaded_since = {m: 0.0 for m in MACHINES}
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=40.0, ti=20.0, umin=23.0, umax=100.0, dt=self.period_s)
        self._header = HeaderPressure(("c1", "c2", "c3", "vsd"))
        self.last_p = None
        self.blind_s = 0.0

    def run(self, t_s, snap):
        p = self._header.read(snap, t_s)
        dt = self.tick(t_s)
        if good(p):
            self.last_p, self.blind_s = p, 0.0
        else:
            self.blind_s += dt
            p = self.last_p if self.blind_s < BLIND_S else math.nan  # a lost poll: hold
        if not good(p):
            # No pressure reading at all: a pressure switch with no pressure
            # loads nothing (a blind machine can overpressure the header);
            # machines run on unloaded and reload as soon as a reading returns.
            out = {}
            for m in MACHINES:
                if self.loaded[m]:
                    self.loaded[m] = False
                    self.unloaded_since[m] = t_s
                run = t_s - self.unloaded_since[m] < self.RUN_ON_S
                out[m] = {"run_cmd": int(run), "load_cmd": 0, "speed_ref_pct": 0.0}
            vsd = pi_step(self.pid, self.VSD_SP, math.nan, fallback=23.0, dt=dt)
            out["vsd"] = {"run_cmd": 1, "load_cmd": 0, "speed_ref_pct": vsd}
            return out
        out = {}
        for m in MACHINES:
            on, off = self.BANDS[m]
            if p < on:
                self.loaded[m] = True
            elif p > off:
                if self.loaded[m]:
                    self.unloaded_since[m] = t_s
                self.loaded[m] = False
            run = self.loaded[m] or t_s - self.unloaded_since[m] < self.RUN_ON_S
            out[m] = {"run_cmd": int(run), "load_cmd": int(self.loaded[m]), "speed_ref_pct": 0.0}
        vsd = pi_step(self.pid, self.VSD_SP, p, dt=dt)
        out["vsd"] = {"run_cmd": 1, "load_cmd": 1, "speed_ref_pct": vsd}
        return out


class StaggeredCascadeBaseline(CascadeBaseline):
    """Best-practice cascade (docs/models.md, "Baselines"): the same pressure
    switches with tight, staggered bands at the lowest pressure that holds the
    users' minimum, and the VSD as the trim machine: its set point lies inside
    every fixed machine's band (above the highest cut-in, below the lowest
    cut-out), so a loaded machine stays loaded and an unloaded one stays
    unloaded while the VSD holds the set point; a fixed machine changes state
    only when the VSD runs out of range (at its maximum the pressure falls to
    the next cut-in; at its minimum it rises to the next cut-out). The lead
    machine loads first and unloads last; no machine only cycles."""

    # 0.40-0.50 bar bands, cut-ins staggered 0.1 bar, cut-outs 0.05 bar. The
    # lowest cut-in (6.9 bar(g)) is the lowest that holds the users' 6.0 bar
    # minimum on the peak day (compressor_peak: at 6.4 the header fell to 5.46
    # bar for 442 s, at 6.7 to 5.75 bar): a cascade has no surge reserve that
    # follows the headroom, so it carries one all the time.
    BANDS = {"c1": (7.10, 7.50), "c2": (7.00, 7.45), "c3": (6.90, 7.40)}
    VSD_SP = 7.25


def _on(x):
    return good(x) and bool(x)


def _delivering(s):
    """A fixed machine that runs and is loaded (a device reports its load
    relay even while the run relay is held off by the minimum stop time)."""
    return _on(s.get("running")) and _on(s.get("loaded"))


class SequencerStrategy(Strategy):
    """Master sequencer: one narrow pressure band at the lowest setpoint that
    holds the minimum header pressure, the VSD machine as PI trim, fixed
    machines staged from a flow-balance demand estimate.

    - Demand estimate (free air, leaks included): what the station supplies
      (loaded fixed machines x their flow + the VSD's flow from its speed) minus
      what the header stores, V/p_atm x dp/dt, filtered. It sees a change in
      demand at once, where the VSD's position only shows it after the PI has
      moved.
    - Staging: the fewest fixed machines that leave the VSD inside its range:
      add one when the VSD would need more than its maximum (for ADD_S, or at
      once when pressure falls ADD_BAR below the setpoint); drop one when the VSD
      could carry that machine's flow with margin for DROP_S. The VSD's PI
      integrator steps by the machine's flow at each change, so the change is
      bumpless (no pressure dip while the PI catches up, no load/unload limit
      cycle). In the control gap (demand between n machines + the VSD's minimum
      and n - 1 machines + its maximum) the VSD runs at its minimum and unloads
      itself for short spells, which costs less than cycling a 90 kW machine.
    - Setpoint: the minimum pressure + MARGIN, plus a reserve sized to ride out
      a design surge (SURGE_M3MIN for SURGE_S) with what the station has left
      above the present demand: (surge - headroom) x duration x p_atm / V.
      At night the reserve is zero; near capacity the header carries it.
    - Run-hour equalisation (fewest hours load first, most hours unload first),
      RUN_ON_S idle before an unloaded machine stops; starts per hour and
      minimum run/stop times are enforced on the device as well.
    - A tripped machine (fault) is never asked to run; its flow moves at once.
    - Pressure unknown (no plausible transmitter): hold for BLIND_S, then every
      machine unloads.
    """

    # Station data (docs/models.md section 2), from the loop's params.
    PLANT = {"p_min_barg": ("P_MIN", 1.0, 12.0), "fixed_m3min": ("FIXED_M3MIN", 0.1, 500.0),
             "vsd_min_m3min": ("VSD_MIN_M3MIN", 0.1, 500.0),
             "vsd_max_m3min": ("VSD_MAX_M3MIN", 0.1, 500.0),
             "volume_m3": ("VOLUME_M3", 0.1, 1000.0)}
    TRACK = {("vsd", "speed_ref_pct"): ("pid", 1.0)}
    PARAMS = ("kp", "ti") + tuple(PLANT)  # VSD pressure PI: %/bar and s; station data

    P_MIN = 6.0               # bar(g): the least the users accept
    MARGIN = 0.30             # bar above P_MIN: noise, analyzer and PI excursions
    RESERVE_MAX = 1.4         # bar: the most pressure held as surge reserve
    SURGE_M3MIN = 10.0        # design surge the reserve covers...
    SURGE_S = 120.0           # ...for this long
    FIXED_M3MIN = 15.0        # station data: each fixed machine's flow
    VSD_MIN_M3MIN = 3.0
    VSD_MAX_M3MIN = 13.0
    VOLUME_M3 = 13.0          # receiver + piping
    P_ATM = 1.01325
    SP_RATE = 0.01            # bar/s: setpoint moves, never jumps
    ADD_BAR = 0.15
    ADD_S = 300.0              # the VSD short of a little: pressure sags slowly, wait
    ADD_FAST_M3MIN = 1.5      # short of more than this: add after ADD_FAST_S
    ADD_FAST_S = 5.0
    ADD_MARGIN = 0.0          # m3/min below the VSD's maximum
    DROP_MARGIN = 1.0         # m3/min the VSD keeps in hand after taking a machine's flow
    DROP_S = 60.0
    GAP_BAND = 0.05            # bar: the VSD's own load/unload band in the control gap
    LEAK_SHARE = 0.25         # share of the demand that scales with pressure (leaks, open blows)
    HIGH_BAR = 0.3            # over-supplied: pressure this far above the setpoint...
    HIGH_S = 20.0             # ...this long with the VSD unloaded or at its minimum
    RUN_ON_S = 300.0
    LEAD_S = 15.0             # s: how far ahead a falling pressure is projected
    PENDING_S = 30.0          # a load asked for counts as coming for this long
    DEMAND_TAU_S = 10.0       # staging: sees a change within seconds
    RESERVE_TAU_S = 300.0     # the setpoint's reserve: follows the shift, not the noise

    def __init__(self, params=None):
        super().__init__(params)
        if self.VSD_MIN_M3MIN >= self.VSD_MAX_M3MIN:
            raise ValueError("vsd_min_m3min = %g must be below vsd_max_m3min = %g"
                             % (self.VSD_MIN_M3MIN, self.VSD_MAX_M3MIN))
        self.pid = load("pid").PidBank(1)
        # Tuning from the loop's params (config), defaults for a 1 s loop without delay.
        self.pid.configure(kp=self.params.get("kp", 500.0), ti=self.params.get("ti", 60.0),
                           umin=23.0, umax=100.0, dt=self.period_s, tt=5.0)
        self.loaded = {m: False for m in MACHINES}
        self.idle_since = {m: -1e9 for m in MACHINES}
        self.add_since = None
        self.drop_since = None
        self.high_since = None
        self.fast_since = None
        self.last_change = -1e9
        self.sp = self.P_MIN + self.MARGIN
        self._header = HeaderPressure(("vsd", "c1", "c2", "c3"))
        self.blind_s = 0.0            # how long no transmitter has been plausible
        self._last_out = None         # the last commands with a pressure reading
        self.p_hist = []          # [(t, p)] over the last 10 s, for dp/dt
        self.demand = None        # m3/min free air, filtered
        self.demand_slow = None   # the same over minutes, for the reserve
        self.vsd_off = False      # unloaded in the control gap
        self.slope = 0.0          # bar/s, from the last 10 s

    def _estimate(self, t_s, dt, p, snap):
        """Filtered demand (m3/min) from the flow balance, or None."""
        if not good(p):
            return self.demand
        self.p_hist.append((t_s, p))
        while self.p_hist and self.p_hist[0][0] < t_s - 10.0:
            self.p_hist.pop(0)
        supply = 0.0
        for m in MACHINES:
            if _delivering(snap[m]):
                supply += self.FIXED_M3MIN
        v = snap["vsd"]
        q_vsd = self.VSD_MAX_M3MIN * (v.get("speed_actual_pct") or 0.0) / 100.0
        if _on(v.get("loaded")) and good(q_vsd):
            supply += q_vsd
        if len(self.p_hist) < 3:
            return self.demand
        # Least-squares slope of the last 10 s of pressure (noise ~5 mbar).
        n = len(self.p_hist)
        tm = sum(x[0] for x in self.p_hist) / n
        pm = sum(x[1] for x in self.p_hist) / n
        den = sum((x[0] - tm) ** 2 for x in self.p_hist)
        slope = sum((x[0] - tm) * (x[1] - pm) for x in self.p_hist) / den if den > 0 else 0.0
        self.slope = slope
        d = supply - self.VOLUME_M3 / self.P_ATM * slope * 60.0
        if self.demand is None or not good(self.demand):
            self.demand = self.demand_slow = d
        else:
            self.demand += min(1.0, dt / self.DEMAND_TAU_S) * (d - self.demand)
            self.demand_slow += min(1.0, dt / self.RESERVE_TAU_S) * (d - self.demand_slow)
        return self.demand

    def _change(self, m, load, t_s):
        self.loaded[m] = load
        if not load:
            self.idle_since[m] = t_s
        # Bumpless staging: the VSD takes over (or hands over) the machine's flow now.
        step = 100.0 * self.FIXED_M3MIN / self.VSD_MAX_M3MIN
        self.pid.integral[0] += -step if load else step
        self.add_since = self.drop_since = self.high_since = self.fast_since = None
        self.last_change = t_s

    def _hold(self, dt):
        """Pressure unknown for less than BLIND_S: the machines as they are, the
        VSD at its last speed (a poll lost on a busy line is no reason to
        unload a station)."""
        speed = pi_step(self.pid, self.sp, math.nan, dt=dt)
        out = {m: {"run_cmd": int(self.loaded[m] or self.idle_since[m] > -1e8),
                   "load_cmd": int(self.loaded[m]), "speed_ref_pct": 0.0} for m in MACHINES}
        out.update(self._last_out or {})
        out["vsd"] = {"run_cmd": 1, "load_cmd": 0 if self.vsd_off else 1, "speed_ref_pct": speed}
        return out

    def _blind(self, t_s, dt):
        """No plausible header pressure from any transmitter: nothing stays
        loaded without a reading; every machine unloads and runs on for its
        run-on time (it reloads at once when a reading returns), the VSD
        unloaded at its minimum speed."""
        for m in MACHINES:
            if self.loaded[m]:
                self._change(m, False, t_s)
        speed = pi_step(self.pid, self.sp, math.nan, fallback=23.0, dt=dt)
        out = {m: {"run_cmd": int(t_s - self.idle_since[m] < self.RUN_ON_S), "load_cmd": 0,
                   "speed_ref_pct": 0.0} for m in MACHINES}
        out["vsd"] = {"run_cmd": 1, "load_cmd": 0, "speed_ref_pct": speed}
        return out

    def run(self, t_s, snap):
        p = self._header.read(snap, t_s)
        faults = {m: bool(snap[m]["comp_fault"]) for m in MACHINES}
        hours = {m: snap[m]["run_hours_h"] for m in MACHINES}
        first = self._t_prev is None
        dt = self.tick(t_s)
        if first:
            # Taking over: a machine found running keeps running (unloaded, for
            # the run-on time) rather than being stopped and then held off by
            # its minimum stop time just when it is needed.
            for m in MACHINES:
                if _on(snap[m].get("running")):
                    self.idle_since[m] = t_s
        if not good(p):
            self.blind_s += dt
            if self.blind_s >= BLIND_S:
                return self._blind(t_s, dt)
            return self._hold(dt)  # a reading missing for a poll or two: hold
        self.blind_s = 0.0
        for m in MACHINES:
            if faults[m] and self.loaded[m]:
                self._change(m, False, t_s)
        demand = self._estimate(t_s, dt, p, snap)
        if demand is not None and good(p):
            # What the users would take at the setpoint: leaks and unregulated
            # blows scale with absolute pressure.
            demand *= 1.0 + self.LEAK_SHARE * ((self.sp + self.P_ATM) / (p + self.P_ATM) - 1.0)
        n = sum(1 for m in MACHINES if self.loaded[m])
        spare = [m for m in MACHINES if not self.loaded[m] and not faults[m]]
        busy = [m for m in MACHINES if self.loaded[m]]
        # Setpoint with the surge reserve the present headroom calls for.
        want = self.P_MIN + self.MARGIN
        if demand is not None:
            capacity = self.FIXED_M3MIN * (n + len(spare)) + self.VSD_MAX_M3MIN
            short = self.SURGE_M3MIN - max(capacity - self.demand_slow, 0.0)
            if short > 0:
                want += min(self.RESERVE_MAX,
                            short * self.SURGE_S / 60.0 * self.P_ATM / self.VOLUME_M3)
        step = self.SP_RATE * dt
        self.sp += max(-step, min(step, want - self.sp))
        if demand is not None and good(p):
            need = demand - self.FIXED_M3MIN * n  # what the VSD must supply
            over = need > self.VSD_MAX_M3MIN - self.ADD_MARGIN
            self.add_since = (self.add_since if self.add_since is not None else t_s) \
                if over else None
            far = need > self.VSD_MAX_M3MIN + self.ADD_FAST_M3MIN
            self.fast_since = (self.fast_since if self.fast_since is not None else t_s) \
                if far else None
            under = need + self.FIXED_M3MIN <= self.VSD_MAX_M3MIN - self.DROP_MARGIN
            self.drop_since = (self.drop_since if self.drop_since is not None else t_s) \
                if under and busy else None
            # Over-supplied: high, not falling, the VSD already off or at its minimum.
            high = p > self.sp + self.HIGH_BAR and self.slope > -0.002 \
                and (self.vsd_off or self.pid.u[0] <= 24.0)
            self.high_since = (self.high_since if self.high_since is not None else t_s) \
                if high and busy else None
            # Urgent: below the band, or heading there within LEAD_S (a load takes
            # a few seconds to arrive, more through a bus).
            urgent = min(p, p + self.slope * self.LEAD_S) < self.sp - self.ADD_BAR \
                and t_s - self.last_change > 5.0
            # A load still on its way (asked, not yet reported loaded) already
            # answers the deficit: wait for it (through a bus the answer comes a
            # poll later), unless the device has not loaded it after PENDING_S.
            pending = any(self.loaded[m] and not _delivering(snap[m]) for m in MACHINES) \
                and t_s - self.last_change < self.PENDING_S
            if spare and not pending and (urgent or (self.add_since is not None
                                     and t_s - self.add_since >= self.ADD_S)
                          or (self.fast_since is not None
                              and t_s - self.fast_since >= self.ADD_FAST_S)):
                # A machine still running unloaded loads at once; a stopped one may be
                # held off by its device (minimum off time, starts per hour).
                self._change(min(spare, key=lambda x: (not _on(snap[x].get("running")),
                                                       hours[x])), True, t_s)
            elif (self.drop_since is not None and t_s - self.drop_since >= self.DROP_S
                  and p > self.sp - 0.1) or (self.high_since is not None
                                             and t_s - self.high_since >= self.HIGH_S):
                self._change(max(busy, key=lambda x: hours[x]), False, t_s)
        speed = pi_step(self.pid, self.sp, p, dt=dt)
        # Control gap: the fixed machines alone cover the demand, the VSD's
        # minimum flow would be surplus. Unload it and let pressure ride a narrow
        # band above the setpoint (reload below it) instead of flapping at its
        # minimum speed; only once every machine asked to load says it is loaded
        # (through a bus, the answer comes a poll later).
        confirmed = sum(1 for m in MACHINES if self.loaded[m] and _delivering(snap[m]))
        if good(p) and demand is not None and n > 0 and confirmed == n \
                and demand - self.FIXED_M3MIN * n < self.VSD_MIN_M3MIN:
            if p > self.sp + self.GAP_BAND:
                self.vsd_off = True
            elif p < self.sp:
                self.vsd_off = False
        else:
            self.vsd_off = False
        out = {}
        for m in MACHINES:
            run = not faults[m] and (self.loaded[m] or t_s - self.idle_since[m] < self.RUN_ON_S)
            out[m] = {"run_cmd": int(run), "load_cmd": int(self.loaded[m] and run),
                      "speed_ref_pct": 0.0}
        out["vsd"] = {"run_cmd": 1, "load_cmd": 0 if self.vsd_off else 1,
                      "speed_ref_pct": speed}
        self._last_out = {m: dict(out[m]) for m in MACHINES}
        return out
