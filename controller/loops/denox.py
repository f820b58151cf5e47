"""SCR denitrification. Typical baseline (PiBaseline): a plain PI from the outlet NOx analyzer to the
NH3 dosing valve (no feedforward, no dead-time compensation), tuned slow enough
to stay stable over the analyzer dead time; dosing enabled above the minimum
catalyst temperature. The analyzer reading is corrected to 6 % O2.
Best-practice baseline (RatioPiBaseline): ratio feedforward on the measured
inlet NOx x flow with a PI trim on outlet NOx.

Size (344 lines): three SCR strategies and the inlet plausibility logic they share.
"""

from cython_ext import load
from controller.loops.base import STUCK_N, Plausible, Strategy, good, o2_check, pi_step, to_6pct


class PiBaseline(Strategy):
    TRACK = {("scr", "valve_cmd_pct"): ("pid", 1.0)}
    SETPOINT_MG_NM3 = 35.0
    MIN_TEMP_C = 300.0

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        # Reverse acting: more NH3, less NOx.
        self.pid.configure(kp=-0.15, ti=400.0, umin=0.0, umax=100.0, dt=self.period_s, tt=60.0)
        self.pid.u_man[0] = 20.0
        self._o2 = o2_check()
        self._nox_out = Plausible(0.1, 1000.0, stuck_n=STUCK_N)

    def run(self, t_s, snap):
        s = snap["scr"]
        nox = self._nox_out.check(s["nox_out_mg_nm3"], t_s)
        to6 = to_6pct(self._o2.check(s["o2_pct"], t_s))
        ok = good(nox) and not s.get("analyzer_fault", 0) and not s.get("analyzer_blowback", 0)
        # Analyzer out or implausible: hold the valve until it is back.
        pi_step(self.pid, self.SETPOINT_MG_NM3, nox * to6 if ok else float("nan"),
                dt=self.tick(t_s))
        temp = s["flue_gas_temp_c"]
        enable = int(good(temp) and temp >= self.MIN_TEMP_C)
        return {"scr": {"dosing_enable": enable, "valve_cmd_pct": float(self.pid.u[0]) if enable else 0.0}}


class FeedforwardSmithStrategy(Strategy):
    """SCR: NH3 feedforward from flue-gas flow x (inlet - target NOx) x NSR, plus a
    PI trim on the outlet analyzer through a Smith predictor for its dead time,
    gain-scheduled on load; a slip constraint and hourly-mean setpoint management.

    - Feedforward [kg/h] = 0.3696e-6 Q [Nm3/h] (C_in - C_target) [mg/Nm3] NSR, all
      on the analyzers' (actual O2) basis; C_target is the 6 % O2 setpoint moved
      to that basis.
    - Trim: PI on outlet NOx at 6 % O2 (kg/h added to the feedforward); the
      Smith predictor's FOPDT model (gain ~ -1/Q, lag ~ 1/load, dead time = the
      analyzer's) removes the dead time from the loop. Gains and model follow
      load (gain scheduling) without bumps.
    - Setpoint: SETPOINT at 6 % O2 (close to the 50 mg limit: the trim holds
      outlet NOx within a few mg), raised by up to 8 mg when the slip analyzer
      reads above SLIP_PPM (less NH3), and steered by the open hour's budget:
      the mean the rest of the hour may have so that the hour lands on
      HOUR_TARGET (pulled down as far as needed, raised by at most
      HOUR_RAISE_MG): the hour is never lost.
    - Analyzer in blow-back or faulted: feedforward only at a conservative NSR,
      the trim holds (bumpless when the analyzer returns).
    - Below the minimum catalyst temperature: no dosing (the device interlocks too).
    - Inputs (docs/safety.md, "Plausibility"): O2, flow, inlet and outlet NOx
      and load pass Plausible checks (range, rate, stuck); an unknown O2 is the
      reference, an unknown flow the last good one. The inlet the feedforward
      uses (_inlet, _learn) is the reading slew-limited to INLET_SLEW, taken as
      it stands up to the credible level (the inlet the outlet confirms,
      learned with INLET_TAU_S) and bounded smoothly above it (at most
      INLET_BAND over); on evidence of overdose nothing above the level. A
      missing, implausible or frozen (INLET_STUCK_N) reading: the last inlet
      used, capped at the credible level.
    - Ceiling: never more NH3 than ANR_MAX x the stoichiometric need of the
      inlet used at the lower of the measured flow and the load's; the device
      enforces its own (nh3_flow_max_kgh, nh3_molar_ratio_max) whatever this
      strategy sends.
    """

    SETPOINT = 46.5
    COLD_EXTRA_MG = 0.0          # setpoint raise at or below WARM_C - 30 C
    WARM_C = 360.0
    HOUR_TARGET = 47.5           # the hourly mean aimed at: 2.5 mg inside the 50 mg limit
    HOUR_RAISE_MG = 1.0          # the most the budget raises the setpoint
    SLIP_PPM = 1.5               # half the 3 ppm permit: slip is NH3 lost
    NSR = 1.0
    NH3_MAX_KGH = 400.0
    TRACK = {("scr", "valve_cmd_pct"): ("pid", "valve_per_kgh")}  # valve % = kg/h x 100 / max
    FLOW_FULL = 2.0e6
    DEAD_TIME_S = 145.0          # analyzer dead time + lag
    NOX_IN_MAX_MG = 1000.0       # plausible inlet NOx (design ~350 mg/Nm3)
    # The bottom of an analyzer's span (4 mA) while NE43-good is a failed
    # analyzer, not the gas: a boiler in operation never makes this little NOx,
    # and an SCR outlet never reads exactly nothing (nor more than any inlet).
    NOX_IN_MIN_MG = 10.0
    NOX_OUT_RANGE_MG = (0.1, 1000.0)
    ANR_MAX = 1.0                # molar-ratio cap on the NH3 dosed for the measured inlet
    # The inlet the feedforward uses (_inlet): the reading slew-limited to
    # INLET_SLEW mg/Nm3/s (a median tracker: noise and spikes do not pass, a
    # real mill step does within the outlet's dead time), taken as it stands up
    # to the credible level and bounded smoothly above it, at most INLET_BAND
    # over it; the credible level is the inlet the outlet confirms (feedforward
    # inlet + trim / gain), learned with INLET_TAU_S.
    INLET_SLEW = 3.0
    INLET_BAND = 0.15
    INLET_TAU_S = 600.0
    # A CEMS reading is never exactly the same INLET_STUCK_N polls in a row
    # (noise, a 0.1 mg register step) unless frozen: a frozen reading, like a
    # missing one, is replaced by the last inlet used capped at the credible
    # level (the inlet the outlet confirms), so the feedforward neither holds
    # a wrong value nor drops out.
    # An analyzer's output hold (blow-back, calibration) reads the same way.
    INLET_STUCK_N = STUCK_N
    # Evidence of overdose: outlet this far below its set point while the slip
    # is above SLIP_PPM -> no inlet above the credible level.
    OVERDOSE_MG = 10.0
    OUT_W = 1.0                  # the outlet's error counts in the confirmed inlet
    TAU_FULL_S = 350.0
    MIN_TEMP_C = 300.0

    def __init__(self, params=None):
        super().__init__(params)
        dl = load("deadtime")
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=-1.0, ti=350.0, umin=-150.0, umax=150.0, dt=self.period_s, tt=60.0)
        self.smith = dl.SmithPredictor(1, self.period_s, 900.0, k=-1.35, tau_s=350.0,
                                       theta_s=self.DEAD_TIME_S)
        self.sp_bias = 0.0
        self.q_last = self.FLOW_FULL
        self.nox_in_last = 0.0  # the inlet the feedforward uses; no reading yet: trim only
        self.nox_in_f = None    # the inlet reading, slew-limited (mg/Nm3)
        self.nox_in_ref = None  # the inlet's credible level, as the outlet confirms it (mg/Nm3)
        # Plausibility of the inputs the feedforward trusts (docs/safety.md):
        # a reading outside its range or jumping faster than the process can
        # is a failed instrument, and the defined fallback takes over.
        self._o2 = o2_check()
        self._q = Plausible(0.05 * self.FLOW_FULL, 1.3 * self.FLOW_FULL, max_rate=0.1 * self.FLOW_FULL)
        self._nox_in = Plausible(self.NOX_IN_MIN_MG, self.NOX_IN_MAX_MG, max_rate=150.0,
                                 stuck_n=self.INLET_STUCK_N)
        self._nox_out = Plausible(*self.NOX_OUT_RANGE_MG, stuck_n=STUCK_N)
        self._load = Plausible(5.0, 120.0)
        self.hour = None
        self.hour_sum = 0.0
        self.hour_s = 0.0            # analyzer-good seconds of the open hour
        import numpy as np
        self._u = np.zeros(1)
        self._pv = np.zeros(1)

    @property
    def valve_per_kgh(self):
        return 100.0 / self.NH3_MAX_KGH

    def _inlet(self, x, dt, overdose):
        """The inlet NOx the feedforward (and the NH3 ceiling) may use, from a
        plausible reading x. The reading is slew-limited first (INLET_SLEW
        mg/Nm3 per s: it tracks the reading's median, so a noisy analyzer
        doses on its mean, not its peaks). Up to the credible level (the inlet
        the outlet confirms: _learn) it is used as it stands (a lower reading
        doses less; the trim makes up); above it, its excess is taken in full
        at first and less and less, smoothly, up to INLET_BAND x the level
        (ref (1 + b tanh(d / b))): a real rise is followed at once in most
        part and the rest as the outlet confirms it; a reading plausibly
        wrong, stuck or drifting high never doses more than INLET_BAND over
        what the outlet confirmed. On evidence of overdose (outlet well below
        its set point, slip above its limit) nothing above the level is used."""
        f = self.nox_in_f
        if f is None:
            self.nox_in_f = self.nox_in_ref = x
            return x
        step = self.INLET_SLEW * dt
        f = self.nox_in_f = min(max(x, f - step), f + step)
        ref = self.nox_in_ref
        if f <= ref:
            return f
        if overdose:
            return ref
        b = self.INLET_BAND
        from math import tanh
        return ref * (1.0 + b * tanh((f / ref - 1.0) / b))

    def _learn(self, used, trim_kgh, gain, out_err, dt):
        """The credible inlet level follows the inlet the outlet confirms: the
        inlet the feedforward used plus what the trim had to add (or take
        away) for the outlet to sit at its set point, trim / (kg/h per mg).
        It is the NOx the NH3 dosed actually met, whatever the inlet analyzer
        says; called only while the outlet analyzer is good and NH3 is dosed."""
        ref = self.nox_in_ref
        if ref is None or gain <= 0.0:
            return
        conf = used + trim_kgh / gain + self.OUT_W * out_err
        conf = min(max(conf, self.NOX_IN_MIN_MG), self.NOX_IN_MAX_MG)
        self.nox_in_ref = ref + min(1.0, dt / self.INLET_TAU_S) * (conf - ref)

    def run(self, t_s, snap):
        dt = self.tick(t_s)
        per = dt / self.period_s     # periods this run spans
        s = snap["scr"]
        to6 = to_6pct(self._o2.check(s["o2_pct"], t_s))
        q_in = self._q.check(s["flue_gas_flow_nm3h"], t_s)
        if good(q_in):
            self.q_last = q_in
        q = self.q_last  # unknown flow: the last good one (the interlock guards the valve)
        load_frac = max(q / self.FLOW_FULL, 0.2)
        nox_out = self._nox_out.check(s["nox_out_mg_nm3"], t_s)
        analyzer_ok = good(nox_out) and not s.get("analyzer_fault", 0) and not s.get("analyzer_blowback", 0)
        temp = s["flue_gas_temp_c"]
        enable = int(good(temp) and temp >= self.MIN_TEMP_C)
        # Setpoint management: slip constraint and the open hour's running mean.
        slip = s["nh3_slip_ppm"]
        if good(slip) and analyzer_ok:
            if slip > self.SLIP_PPM:
                self.sp_bias = min(8.0, self.sp_bias + 0.02 * per)
            else:
                self.sp_bias = max(0.0, self.sp_bias - 0.005 * per)
        hour = int(t_s // 3600)
        if hour != self.hour:
            self.hour, self.hour_sum, self.hour_s = hour, 0.0, 0.0
        if analyzer_ok:
            self.hour_sum += nox_out * to6 * dt
            self.hour_s += dt
        # Colder catalyst stores more NH3 and slips more at the same removal: aim a
        # little higher on NOx there (still well inside the hourly limit).
        cold = min(max((self.WARM_C - temp) / 30.0, 0.0), 1.0) if good(temp) else 1.0
        sp6 = self.SETPOINT + self.COLD_EXTRA_MG * cold + self.sp_bias
        elapsed = t_s - hour * 3600.0
        if self.hour_s >= 600.0 and elapsed < 3540.0:
            # The open hour's budget: the mean the rest of the hour may have for
            # the hour to land on HOUR_TARGET. A low start (blow-back, a cold
            # spell) lets the rest run a little higher; a high one pulls it down
            # at once, as far as needed.
            so_far = self.hour_sum / self.hour_s
            need = (self.HOUR_TARGET * 3600.0 - so_far * elapsed) / (3600.0 - elapsed)
            sp6 = min(max(need, self.SETPOINT - 10.0), sp6 + self.HOUR_RAISE_MG)
        # Feedforward on the analyzers' basis.
        c_target = sp6 / to6
        nsr = self.NSR if analyzer_ok else 0.95
        nox_in = self._nox_in.check(s["nox_in_mg_nm3"], t_s)
        overdose = analyzer_ok and good(slip) and slip > self.SLIP_PPM \
            and nox_out * to6 < sp6 - self.OVERDOSE_MG
        if good(nox_in):
            self.nox_in_last = self._inlet(nox_in, dt, overdose)
        elif self.nox_in_ref is not None:
            # Missing, implausible or frozen: the last inlet used, but never
            # above the credible level (a frozen-high reading falls back to it;
            # the level itself may climb on a wrong outlet, the held inlet
            # does not); the slew tracker restarts from it on a live reading.
            self.nox_in_last = self.nox_in_f = min(self.nox_in_last, self.nox_in_ref)
        ff = 0.3696e-6 * q * max(self.nox_in_last - c_target, 0.0) * nsr
        # Gain scheduling: process gain ~ -1/Q (mg/Nm3 at 6 % per kg/h), lag ~ 1/load.
        k = -1.0 / (0.3696e-6 * q) * to6
        tau = self.TAU_FULL_S / load_frac
        self.smith.k[0], self.smith.tau_s[0] = k, tau
        lam = 250.0
        self.pid.configure(kp=tau / (k * lam), ti=tau, dt=dt)
        if analyzer_ok:
            self._u[0] = float(self.pid.u[0])
            self._pv[0] = nox_out * to6
            # The model moves on the period's grid: a run spanning several
            # periods steps it that many times (the trim held meanwhile).
            for _ in range(max(1, int(round(per)))):
                pv = self.smith.step(self._u, self._pv)[0]
        else:
            pv = float("nan")  # hold the trim
        if not enable:
            pv = float("nan")  # no dosing: the trim holds (no wind-up for the restart)
        pi_step(self.pid, sp6, pv)
        # The molar-ratio cap: never more NH3 than ANR_MAX x the stoichiometric
        # need of the inlet NOx at the measured flow, whatever the trim says;
        # the flow no more than the boiler load supports.
        q_cap = q
        load = self._load.check(s.get("unit_load_pct"), t_s)
        if good(load):
            q_cap = min(q, self.FLOW_FULL * load / 100.0)  # a flow reading high cannot raise it
        cap = self.ANR_MAX * 0.3696e-6 * q_cap * self.nox_in_last
        kgh = min(max(0.0, ff + float(self.pid.u[0])), cap)
        if analyzer_ok and enable and good(pv):
            self._learn(self.nox_in_last, kgh - ff, 0.3696e-6 * q * nsr,
                        (nox_out * to6 - sp6) / to6, dt)
        valve = float(min(100.0, 100.0 * kgh / self.NH3_MAX_KGH)) if enable else 0.0
        return {"scr": {"dosing_enable": enable, "valve_cmd_pct": valve}}


class RatioPiBaseline(Strategy):
    """Best-practice SCR baseline: NH3 as a ratio feedforward on the measured
    inlet NOx mass flow (inlet NOx x flue-gas flow) with a PI trim of the molar
    ratio on outlet NOx (docs/models.md, "Baselines"): what well-run plants run
    (no dead-time compensation, no hourly budget, no slip constraint).

    - NH3 [kg/h] = 0.3696e-6 Q C_in MR, MR = MR_ff + trim, MR_ff = (C_in -
      C_sp) / C_in the removal asked for (all on the analyzers' basis; C_sp the
      6 % O2 set point moved to it), clamped to 0..MR_MAX.
    - Trim: PI on outlet NOx at 6 % O2, its output in molar-ratio units, tuned
      by the SIMC rules for the nominal FOPDT (gain -C_in, lag 350 s, dead time
      145 s, tau_c = the dead time): slow enough for the analyzer's dead time.
    - Set point: SETPOINT_MG_NM3 at 6 % O2, what an operator chooses for the
      loop's variability (docs/models.md, "Baselines").
    - Outlet analyzer in blow-back or faulted: the trim holds, the ratio goes
      on. Inlet analyzer or flow implausible: the last good value.
    - Below the minimum catalyst temperature: no dosing, the trim holds.
    """

    TRACK = {("scr", "valve_cmd_pct"): ("pid", "valve_per_mr")}
    SETPOINT_MG_NM3 = 45.0   # 5 mg (10 % of the limit) inside: ~3 x the loop's outlet std
    MIN_TEMP_C = 300.0
    NH3_MAX_KGH = 400.0
    FLOW_FULL = 2.0e6
    MR_MAX = 1.05
    KP = -0.0034          # molar ratio per mg/Nm3 (SIMC: tau / (k (tau_c + theta)))
    TI_S = 350.0

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=self.KP, ti=self.TI_S, umin=-0.5, umax=0.5, dt=self.period_s,
                           tt=120.0)
        self.pid.u_man[0] = 0.0
        self._o2 = o2_check()
        self._q = Plausible(0.05 * self.FLOW_FULL, 1.3 * self.FLOW_FULL, max_rate=0.1 * self.FLOW_FULL)
        self._nox_in = Plausible(10.0, 1000.0, max_rate=150.0, stuck_n=STUCK_N)
        self._nox_out = Plausible(0.1, 1000.0, stuck_n=STUCK_N)
        self.q_last = self.FLOW_FULL
        self.nox_in_last = None
        self.valve_per_mr = 0.0

    def run(self, t_s, snap):
        dt = self.tick(t_s)
        s = snap["scr"]
        to6 = to_6pct(self._o2.check(s["o2_pct"], t_s))
        q = self._q.check(s["flue_gas_flow_nm3h"], t_s)
        if good(q):
            self.q_last = q
        nox_in = self._nox_in.check(s["nox_in_mg_nm3"], t_s)
        if good(nox_in):
            self.nox_in_last = nox_in
        nox_out = self._nox_out.check(s["nox_out_mg_nm3"], t_s)
        ok = good(nox_out) and not s.get("analyzer_fault", 0) and not s.get("analyzer_blowback", 0)
        temp = s["flue_gas_temp_c"]
        enable = int(good(temp) and temp >= self.MIN_TEMP_C)
        pv = nox_out * to6 if ok and enable else float("nan")  # the trim holds
        trim = pi_step(self.pid, self.SETPOINT_MG_NM3, pv, dt=dt)
        c_in = self.nox_in_last
        if c_in is None or not enable:
            return {"scr": {"dosing_enable": enable, "valve_cmd_pct": 0.0}}
        mr_ff = max(c_in - self.SETPOINT_MG_NM3 / to6, 0.0) / c_in
        mr = min(max(mr_ff + trim, 0.0), self.MR_MAX)
        kgh_per_mr = 0.3696e-6 * self.q_last * c_in
        self.valve_per_mr = 100.0 * kgh_per_mr / self.NH3_MAX_KGH
        valve = min(100.0, mr * self.valve_per_mr)
        return {"scr": {"dosing_enable": enable, "valve_cmd_pct": float(valve)}}
