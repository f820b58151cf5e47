"""Fan or pump train (device "drive", motor profile; "process" carries the flow
setpoint the process asks for): machine curve with the affinity laws, system curve with
static head, outlet damper/throttle, induction motor by IE class, VFD losses.

Pressures in Pa, flows in m3/s, powers in kW. At speed n (fraction of rated):
  machine  dp = n^2 dp0 - (dp0 - dpd) (Q/Qd)^2          (dp0: shut-off pressure)
  system   dp = dps + (dpd - dps) (Q/Qd)^2 r(damper)     r = 1 + k (1/p^2 - 1)
  machine efficiency peaks at Q = n Qd (similar operating points keep efficiency)
  shaft power = Q dp / eta
  motor losses = P_r (1/eta_r - 1) (c0 + (1 - c0) x^2), x = shaft/P_r, eta_r by
    EU 2019/1781 for the IE class (peaks near 75 % load)
  VFD efficiency interpolated over load points (drive = "vfd"); none for "dol"
    (direct on line: the damper baseline).
The operating point is the closed-form intersection of the two curves.
"""

import math

import numpy as np

from hil_tests.plants.base import Plant

IE = {"IE2": (0.0278, -1.9247, 10.4395, 80.9761), "IE3": (0.0773, -1.8951, 9.2984, 83.7025),
      "IE4": (0.2412, -2.3608, 8.446, 86.8321)}


def ie_efficiency(p_kw, cls):
    """EU 2019/1781 4-pole 50 Hz minimum efficiency (fraction) for 0.75-200 kW."""
    a, b, c, d = IE[cls]
    x = math.log10(min(max(p_kw, 0.75), 200.0))
    return (a * x ** 3 + b * x ** 2 + c * x + d) / 100.0


class FanPumpPlant(Plant):
    DEVICES = {"drive": "motor"}
    PARAMS = {
        "design_flow_m3s": (50.0, 1e-3, 1e4),
        "design_pressure_pa": (2500.0, 1.0, 1e7),
        "shutoff_ratio": (1.25, 1.01, 3.0),
        "static_fraction": (0.0, 0.0, 0.9),
        "peak_efficiency": (0.82, 0.2, 0.95),
        "efficiency_curvature": (0.6, 0.0, 2.0),
        "motor_rated_kw": (160.0, 0.75, 1000.0),
        "motor_class": ("IE3", None, tuple(IE)),
        "motor_const_loss_frac": (0.35, 0.0, 1.0),
        "damper_k": (1.0, 0.01, 100.0),
        "damper_min_pct": (5.0, 1.0, 50.0),
        "drive": ("vfd", None, ("vfd", "dol")),
        "speed_tau_s": (5.0, 0.01, 600.0),
        "line_voltage_v": (400.0, 100.0, 15000.0),
        "pv_noise": (0.002, 0.0, 0.1),
        # The train is running at t = 0, delivering the scenario's first demand
        # (0: standing still, started by the strategy).
        "initial_running": (1, 0, 1),
    }
    SPEC = {"profiles": {"demand": (0.0, 1.2)},
            "events": {"flow_sensor_stuck": {}, "wire_break": {}},
            "signals": {"drive": ("process_pv", "process_sp", "power_kw", "energy_kwh",
                                  "power_factor", "voltage_l1_v", "current_l1_a",
                                  "frequency_hz", "drive_output_hz")}}
    # The DCS's flow set point (the motor profile's process_sp) is the process's.
    ALIASES = {("drive", "process_sp"): ("process", "flow_sp_m3s")}
    VFD_LOAD = np.array([0.0, 0.125, 0.25, 0.5, 1.0])
    VFD_EFF = np.array([0.80, 0.89, 0.94, 0.96, 0.97])

    def __init__(self, name, scenario, params=None, options=None):
        super().__init__(name, scenario, params, options)
        p = self.p
        self.drive = self.options.get("drive", p["drive"])
        self.eta_r = ie_efficiency(p["motor_rated_kw"], p["motor_class"])
        self.n = 0.0
        self.q = self.dp = self.shaft_kw = self.elec_kw = 0.0
        self.demand_m3s = scenario.profiles["demand"].base(0.0) * self.p["design_flow_m3s"]
        self.energy_kwh = 0.0
        self.damper = 1.0
        self._rng = np.random.default_rng(scenario.seed + 11)
        self._stuck = None
        self.cmd["drive"].update(speed_ref_pct=0.0, run_cmd=0, damper_cmd_pct=100.0)
        if p["initial_running"]:
            self._start_at_demand(self.demand_m3s)

    def _start_at_demand(self, q_want):
        """Speed (VFD) or damper position (direct on line) that delivers q_want."""
        def solve(f):
            lo, hi = 0.0, 1.0
            for _ in range(50):
                mid = (lo + hi) / 2
                if f(mid) < q_want:
                    lo = mid
                else:
                    hi = mid
            return hi
        if self.drive == "vfd":
            self.n = solve(lambda n: self.operating_point(n, 1.0)[0])
        else:
            self.n = 1.0
            self.damper = solve(lambda d: self.operating_point(1.0, d)[0])
        self.q, self.dp, self.shaft_kw = self.operating_point(self.n, self.damper)
        self.elec_kw = self.electrical_kw(self.shaft_kw, self.n)
        self.cmd["drive"].update(speed_ref_pct=100.0 * self.n if self.drive == "vfd" else 100.0,
                                 run_cmd=1, damper_cmd_pct=100.0 * self.damper)

    def operating_point(self, n, damper):
        p = self.p
        qd, dpd = p["design_flow_m3s"], p["design_pressure_pa"]
        dp0 = p["shutoff_ratio"] * dpd
        dps = p["static_fraction"] * dpd
        pos = max(damper, p["damper_min_pct"] / 100.0)
        r = 1.0 + p["damper_k"] * (1.0 / pos ** 2 - 1.0)
        head = n * n * dp0 - dps
        if n <= 0 or head <= 0:
            return 0.0, n * n * dp0, 0.0
        q = qd * math.sqrt(head / ((dp0 - dpd) + (dpd - dps) * r))
        dp = n * n * dp0 - (dp0 - dpd) * (q / qd) ** 2
        phi = q / (n * qd)
        eta = max(0.2, p["peak_efficiency"] * (1 - p["efficiency_curvature"] * (phi - 1) ** 2))
        shaft = q * dp / eta / 1000.0
        return q, dp, shaft

    def electrical_kw(self, shaft_kw, n):
        if n <= 0:
            return 0.0
        p = self.p
        pr = p["motor_rated_kw"]
        x = shaft_kw / pr
        losses = pr * (1 / self.eta_r - 1) * (p["motor_const_loss_frac"]
                                              + (1 - p["motor_const_loss_frac"]) * x * x)
        motor_in = shaft_kw + losses
        if self.drive == "vfd":
            return motor_in / float(np.interp(motor_in / pr, self.VFD_LOAD, self.VFD_EFF))
        return motor_in

    def step(self, t_s, dt_s):
        c = self.cmd["drive"]
        target = (c["speed_ref_pct"] / 100.0 if self.drive == "vfd" else 1.0) if c["run_cmd"] else 0.0
        a = math.exp(-dt_s / self.p["speed_tau_s"])
        self.n = a * self.n + (1 - a) * target
        self.damper = min(max(c["damper_cmd_pct"], 0.0), 100.0) / 100.0
        self.q, self.dp, self.shaft_kw = self.operating_point(self.n, self.damper)
        self.elec_kw = self.electrical_kw(self.shaft_kw, self.n)
        self.energy_kwh += self.elec_kw * dt_s / 3600.0
        self.demand_m3s = self.sc.profiles["demand"](t_s) * self.p["design_flow_m3s"]
        self.t_s = t_s + dt_s

    def measure(self):
        q = self.q * (1 + self.p["pv_noise"] * self._rng.standard_normal())
        if self.sc.active("flow_sensor_stuck", self.t_s):
            self._stuck = q if self._stuck is None else self._stuck
            q = self._stuck
        else:
            self._stuck = None
        broken = bool(self.sc.active("wire_break", self.t_s))
        kw = self.elec_kw
        v = self.p["line_voltage_v"]
        pf = 0.86 if self.n > 0 else 1.0
        i = kw * 1000.0 / (math.sqrt(3) * v * pf) if kw > 0 else 0.0
        return {"drive": {
            "process_pv": float("nan") if broken else q,
            "process_pv_ma": 2.0 if broken else 4.0 + 16.0 * min(q / (1.2 * self.p["design_flow_m3s"]), 1.0),
            "power_kw": kw, "energy_kwh": self.energy_kwh, "power_factor": pf,
            "voltage_l1_v": v / math.sqrt(3), "current_l1_a": i, "frequency_hz": 50.0,
            "speed_actual_pct": 100.0 * self.n, "drive_output_hz": 50.0 * self.n,
            "running": 1 if self.n > 0.01 else 0, "damper_pos_pct": 100.0 * self.damper,
        }, "process": {"flow_sp_m3s": self.demand_m3s,
                       "flow_design_m3s": self.p["design_flow_m3s"]}}

    def truth(self):
        return {"power_kw": {"drive": self.elec_kw}, "flow_m3s": self.q,
                "demand_m3s": self.demand_m3s, "shaft_kw": self.shaft_kw}
