"""Wet FGD. Baseline: every recirculation pump running, a fixed pH setpoint held
by a PI on the limestone feeder, the oxidation blower at full output."""

from cython_ext import load
from controller.loops.base import (CEMS_HOLD_S, STUCK_N, Plausible, Strategy, good, o2_check,
                                   ph_check, pi_step, to_6pct)


class AllPumpsBaseline(Strategy):
    TRACK = {("fgd", "feeder_cmd_pct"): ("pid", 1.0)}
    PH_SP = 5.5

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=40.0, ti=900.0, umin=0.0, umax=100.0, dt=self.period_s, tt=300.0)
        self.pid.u_man[0] = 45.0
        self._ph = ph_check()

    def run(self, t_s, snap):
        f = snap["fgd"]
        # A failed, implausible or frozen pH probe: the feeder holds.
        pi_step(self.pid, self.PH_SP, self._ph.check(f["ph"], t_s), dt=self.tick(t_s))
        cmd = {"pump%d_run" % i: 1 for i in range(1, 6)}
        cmd.update(feeder_cmd_pct=float(self.pid.u[0]), blower_cmd_pct=100.0)
        return {"fgd": cmd}


class PumpStagingStrategy(Strategy):
    """Wet FGD energy optimiser: the fewest recirculation pumps that keep outlet
    SO2 under the limit with a margin, pH held by a feedforward + PI on the
    limestone feeder, oxidation air by SO2 load.

    - Pumps: the removal model eta = 1 - exp(-NTU), NTU = 4.42 (n/4)^0.6
      10^(0.25 (pH - 5.5)) with n in pumps at the design gas flow (L/G: at half
      load each pump washes twice the gas share) gives the pumps needed for the
      target outlet at the measured inlet SO2, pH and gas flow; measured outlet above the trim level adds one.
      The correlation's NTU is scaled by what the plant shows (identify.RemovalGain:
      ln(inlet / outlet) over the model's NTU for the pumps running, learned over an
      hour, used within 1-1.15): a plant that removes more than the host's
      correlation (docs/models.md, "Model mismatch") runs the fewer pumps it
      needs; one that removes less is left to the outlet trim.
      Fewer pumps are allowed only after a hold time (the firmware also enforces
      minimum run/stop times). A pump that trips is replaced at once.
    - pH setpoint traded against pumps: 5.7 (more removal per pump) instead of 5.5.
    - Limestone: stoichiometric feedforward (Ca/S 1.03 x SO2 load) + PI trim on pH.
    - Blower: a constraint, not a free cut: the oxidation air for an O2
      stoichiometric ratio of at least SR_MIN on the SO2 the absorber takes
      (estimated from the measured inlet SO2 x flue-gas flow, at least what is
      absorbed), at the host's configured air of the blower at 100 %; never below
      its turndown BLOWER_MIN_PCT. SR_MIN = 3 keeps the sulphite in the gypsum
      under 0.5 % on a plant whose oxidation rate constant is 20 % below nominal
      (docs/models.md section 4, "Forced oxidation").
    - Bad pH: hold the feeder; bad outlet analyzer: run one pump more than the model says.
    """

    PH_SP = 5.65
    TARGET_MG = 27.0          # model target, at 6 % O2 (limit 35)
    TRIM_MG = 30.0            # measured outlet above this adds a pump
    DOWN_HOLD_S = 900.0
    START_S = 60.0            # a pump asked to run that is not running by then is missing
    FEEDER_MAX_KMOL_S = 0.04  # plant data the host is configured with
    DESIGN_SO2_KMOL_S = 0.0174 * 1.4
    DESIGN_FLOW_NM3H = 2.0e6  # the gas flow the pump count correlation is for
    NTU_REF = 4.42            # the host's removal correlation (docs/models.md section 4):
    NTU_PUMP_EXP = 0.6        # NTU = NTU_REF (n/4)^NTU_PUMP_EXP 10^(PH_DECADE (pH - PH_REF))
    PH_DECADE = 0.25
    PH_REF = 5.5
    BLOWER_AIR_MAX_NM3H = 14000.0   # the blower's air at 100 % (host configuration)
    SR_MIN = 3.0                    # O2 stoichiometric ratio the blower must give
    BLOWER_MIN_PCT = 40.0           # the blower's turndown
    PLANT = {"ntu_ref": ("NTU_REF", 0.1, 50.0), "ntu_pump_exp": ("NTU_PUMP_EXP", 0.05, 3.0),
             "blower_air_max_nm3h": ("BLOWER_AIR_MAX_NM3H", 1.0, 1e6),
             "sr_min": ("SR_MIN", 1.0, 10.0), "blower_min_pct": ("BLOWER_MIN_PCT", 0.0, 100.0),
             "ph_decade": ("PH_DECADE", 0.01, 2.0), "ph_ref": ("PH_REF", 3.0, 8.0),
             "feeder_max_kmol_s": ("FEEDER_MAX_KMOL_S", 1e-4, 10.0),
             "design_flow_nm3h": ("DESIGN_FLOW_NM3H", 1e3, 1e8)}
    TRACK = {("fgd", "feeder_cmd_pct"): ("pid", 1.0)}
    PARAMS = tuple(PLANT)
    SO2_IN_MAX_MG = 6000.0       # plausible inlet SO2 (coal switches reach 4000)

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        self.pid.configure(kp=60.0, ti=600.0, umin=-60.0, umax=60.0, dt=self.period_s, tt=120.0)
        from controller.loops.identify import RemovalGain
        self.removal = RemovalGain()
        self.n = 5
        self.last_up = -1e9
        self.last_change = -1e9
        self.cmd_since = [None] * 5      # when each pump was last commanded on
        self.unavailable_until = [0.0] * 5
        self.was_running = [False] * 5
        self.so2_kmol_s = self.DESIGN_SO2_KMOL_S / 1.4  # SO2 absorbed, last good (design first)
        # Plausibility of the measured inputs (docs/safety.md); NaN -> fallback.
        self._o2 = o2_check()
        self._so2_in = Plausible(0.0, self.SO2_IN_MAX_MG, max_rate=300.0, stuck_n=STUCK_N,
                                 stuck_s=CEMS_HOLD_S)
        self._q = Plausible(0.05 * self.DESIGN_FLOW_NM3H, 1.3 * self.DESIGN_FLOW_NM3H,
                            max_rate=0.1 * self.DESIGN_FLOW_NM3H)
        self._so2_out = Plausible(0.1, 3000.0, stuck_n=STUCK_N)
        self._ph = ph_check()

    def resume(self, t_s):
        """Back from manual: a pump the operator stopped is no trip (it would be
        skipped for 30 min); each pump asked to run gets its START_S again."""
        self.was_running = [False] * 5
        self.cmd_since = [None] * 5

    def blower_pct(self, so2_kmol_s):
        """The blower command that gives SR_MIN on so2_kmol_s absorbed (kmol/s):
        O2 = 0.2095 x air / 22.414 [kmol/Nm3]; SR = O2 / (so2 / 2)."""
        air = self.SR_MIN * 0.5 * so2_kmol_s / 0.2095 * 22.414 * 3600.0
        return min(100.0, max(self.BLOWER_MIN_PCT, 100.0 * air / self.BLOWER_AIR_MAX_NM3H))

    def model_ntu(self, n, ph, flow):
        """The host's correlation: NTU for n pumps running at pH ph and gas flow flow."""
        if not (good(ph) and good(flow)) or n <= 0:
            return float("nan")
        lg = min(max(flow / self.DESIGN_FLOW_NM3H, 0.2), 1.5)
        return (self.NTU_REF * 10 ** (self.PH_DECADE * (ph - self.PH_REF))
                * (n / (4.0 * lg)) ** self.NTU_PUMP_EXP)

    def _needed(self, so2_in, ph, flow):
        import math
        if so2_in <= self.TARGET_MG:
            return 1
        ntu = -math.log(self.TARGET_MG / so2_in)
        per = self.removal.gain * self.NTU_REF * 10 ** (self.PH_DECADE * (ph - self.PH_REF))
        # Pumps at the design gas flow, scaled to the gas the absorber sees (L/G).
        lg = min(max(flow / self.DESIGN_FLOW_NM3H, 0.2), 1.5)
        return max(1, min(5, math.ceil(4 * (ntu / per) ** (1 / self.NTU_PUMP_EXP) * lg)))

    def run(self, t_s, snap):
        dt = self.tick(t_s)
        f = snap["fgd"]
        corr = to_6pct(self._o2.check(f["o2_pct"], t_s))
        so2_raw = self._so2_in.check(f["so2_in_mg_nm3"], t_s)
        so2_in = so2_raw * corr
        ph_m = self._ph.check(f["ph"], t_s)
        ph = ph_m if good(ph_m) else self.PH_SP
        # Inlet unknown: every pump (removal first, energy second).
        q = self._q.check(f["flue_gas_flow_nm3h"], t_s)
        flow = q if good(q) else self.DESIGN_FLOW_NM3H
        need = self._needed(so2_in, min(ph, self.PH_SP), flow) if good(so2_in) else 5
        out = self._so2_out.check(f["so2_out_mg_nm3"], t_s)
        if not good(out) or f.get("so2_analyzer_fault"):
            need = min(5, need + 1)
        elif out * corr > self.TRIM_MG:
            need = max(need, self.n + 1) if t_s - self.last_up > 120 else need
        running = [f["pump%d_running" % i] for i in range(1, 6)]
        if need > self.n:
            self.n = min(5, need)
            self.last_up = t_s
            self.last_change = t_s
        elif need < self.n and t_s - self.last_change > self.DOWN_HOLD_S:
            self.n -= 1
            self.last_change = t_s
        # A pump that was running and stopped while still commanded on has
        # tripped: skip it for 30 min and start the next one (answered within
        # one cycle). A pump not yet started is no trip: the device may hold
        # the start back (minimum off time, starts per hour).
        for i in range(5):
            if self.cmd_since[i] is not None and self.was_running[i] and not running[i]:
                self.unavailable_until[i] = t_s + 1800.0
                self.cmd_since[i] = None
        self.was_running = [bool(r) and good(r) for r in running]
        # Command the first available pumps until n of them run or are starting;
        # one asked to start that is still not running after START_S (tripped,
        # or held back by its device) does not count, and the next one is asked.
        cmd = {}
        k = 0
        for i in range(5):
            on = k < self.n and t_s >= self.unavailable_until[i]
            if on and self.cmd_since[i] is None:
                self.cmd_since[i] = t_s
            if not on:
                self.cmd_since[i] = None
            cmd["pump%d_run" % (i + 1)] = 1 if on else 0
            if on and (self.was_running[i] or t_s - self.cmd_since[i] < self.START_S):
                k += 1
        # Feeder: feedforward on the SO2 that will be absorbed, PI trim on pH.
        # An unknown inlet or flow keeps the last good SO2 rate: the feeder never
        # drops to zero (nor jumps) on a failed analyzer; the pH trim goes on.
        if good(so2_raw) and good(q):
            self.so2_kmol_s = so2_raw * 1e-6 * q / 3600.0 / 64.066
        so2_kmol_s = self.so2_kmol_s
        ff = 100.0 * 1.03 * so2_kmol_s / self.FEEDER_MAX_KMOL_S
        pi_step(self.pid, self.PH_SP, ph_m, dt=dt)   # a bad pH: the trim holds
        feeder = min(100.0, max(0.0, ff + float(self.pid.u[0])))
        blower = self.blower_pct(so2_kmol_s)
        cmd.update(feeder_cmd_pct=feeder, blower_cmd_pct=blower)
        # What the plant removes over the host's correlation (identify.RemovalGain),
        # both analyzers on the same O2 basis: the next cycles' pump count uses it.
        n_run = sum(1 for r in running if good(r) and r)
        out_ok = float("nan") if f.get("so2_analyzer_fault") else out
        self.removal.update(t_s, so2_raw, out_ok, n_run, self.model_ntu(n_run, ph, flow))
        return {"fgd": cmd}


class LoadStagingBaseline(AllPumpsBaseline):
    """Best-practice FGD baseline (docs/models.md, "Baselines"): recirculation
    pumps staged by unit load and measured inlet SO2 from a commissioning table,
    pH set point fixed at 5.5 (PI on the limestone feeder, as the typical
    baseline), oxidation blower at full output. The table's pumps hold outlet
    SO2 at or below ~20 mg/Nm3 (6 % O2) at each band's upper edge at pH 5.5.
    An unknown inlet SO2 or load: every pump. Fewer pumps only after a hold."""

    LOAD_BANDS = (60.0, 80.0)                # % of full gas flow: <= 60, <= 80, above
    SO2_BANDS = (1500.0, 2200.0, 3000.0)     # mg/Nm3 at 6 % O2; above the last: every pump
    TABLE = ((3, 4, 4), (3, 4, 5), (3, 4, 5))  # pumps [SO2 band][load band]
    FLOW_FULL = 2.0e6
    DOWN_HOLD_S = 900.0

    def __init__(self, params=None):
        super().__init__(params)
        self.n = 5
        self.last_change = -1e9
        self._so2 = Plausible(0.0, 6000.0, max_rate=300.0, stuck_n=STUCK_N, stuck_s=CEMS_HOLD_S)
        self._q = Plausible(0.05 * self.FLOW_FULL, 1.3 * self.FLOW_FULL, max_rate=0.1 * self.FLOW_FULL)
        self._o2 = o2_check()

    def table(self, so2_6, load_pct):
        if not (good(so2_6) and good(load_pct)):
            return 5
        j = sum(1 for b in self.LOAD_BANDS if load_pct > b)
        i = sum(1 for b in self.SO2_BANDS if so2_6 > b)
        return 5 if i >= len(self.SO2_BANDS) else self.TABLE[i][j]

    def run(self, t_s, snap):
        f = snap["fgd"]
        corr = to_6pct(self._o2.check(f["o2_pct"], t_s))
        so2 = self._so2.check(f["so2_in_mg_nm3"], t_s) * corr
        q = self._q.check(f["flue_gas_flow_nm3h"], t_s)
        need = self.table(so2, 100.0 * q / self.FLOW_FULL if good(q) else float("nan"))
        if need > self.n:
            self.n, self.last_change = need, t_s
        elif need < self.n and t_s - self.last_change > self.DOWN_HOLD_S:
            self.n, self.last_change = self.n - 1, t_s
        out = super().run(t_s, snap)
        for i in range(1, 6):
            out["fgd"]["pump%d_run" % i] = 1 if i <= self.n else 0
        return out
