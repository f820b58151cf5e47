"""Peer for the plants benchmark: each GreenEdge plant's equations written the
plain way, state for state, in pure Python with scipy.integrate.solve_ivp
(RK45) over each 1 s input interval, the inputs held over the interval.

Each peer integrates the continuous ODEs of its plant (GreenEdge steps them in
closed form or with frozen coefficients: cython_ext/plants.pyx) and computes
the same algebraic outputs (operating point, powers, outlet concentrations,
pH, solids quality) and counters (energy, run hours, starts) at the end of each
step. Parameters are the plant's (hil_tests/plants/params/*.toml), initial
states the GreenEdge plant's at t = 0 (what is compared is the stepping).
"""

import math

import numpy as np
from scipy.integrate import solve_ivp

R = 8.314462618
RTOL = 1e-6


def _ivp(rhs, dt, y, args):
    return solve_ivp(rhs, (0.0, dt), y, args=args, rtol=RTOL).y[:, -1]


class FanPumpIvp:
    """Fan/pump train: state n (speed, fraction of rated), dn/dt = (target - n)/tau;
    operating point, shaft and electrical power algebraic; energy counted per step."""

    VFD_LOAD = (0.0, 0.125, 0.25, 0.5, 1.0)
    VFD_EFF = (0.80, 0.89, 0.94, 0.96, 0.97)

    def __init__(self, p, cmd, n0, eta_r, drive="vfd"):
        self.p, self.cmd, self.n, self.eta_r, self.drive = p, cmd, n0, eta_r, drive
        self.q = self.dp = self.shaft_kw = self.elec_kw = self.energy_kwh = 0.0
        self.damper, self.demand_m3s = 1.0, 0.0

    def rhs(self, t, y, target):
        return [(target - y[0]) / self.p["speed_tau_s"]]

    def operating_point(self, n, damper):
        p = self.p
        qd, dpd = p["design_flow_m3s"], p["design_pressure_pa"]
        dp0, dps = p["shutoff_ratio"] * dpd, p["static_fraction"] * dpd
        pos = max(damper, p["damper_min_pct"] / 100.0)
        r = 1.0 + p["damper_k"] * (1.0 / pos ** 2 - 1.0)
        if n <= 0 or n * n * dp0 - dps <= 0:
            return 0.0, n * n * dp0, 0.0
        q = qd * math.sqrt((n * n * dp0 - dps) / ((dp0 - dpd) + (dpd - dps) * r))
        dp = n * n * dp0 - (dp0 - dpd) * (q / qd) ** 2
        eta = max(0.2, p["peak_efficiency"] * (1 - p["efficiency_curvature"] * (q / (n * qd) - 1) ** 2))
        return q, dp, q * dp / eta / 1000.0

    def electrical_kw(self, shaft_kw, n):
        if n <= 0:
            return 0.0
        p = self.p
        pr, c0 = p["motor_rated_kw"], p["motor_const_loss_frac"]
        x = shaft_kw / pr
        motor_in = shaft_kw + pr * (1 / self.eta_r - 1) * (c0 + (1 - c0) * x * x)
        if self.drive == "vfd":
            return motor_in / float(np.interp(motor_in / pr, self.VFD_LOAD, self.VFD_EFF))
        return motor_in

    def step(self, dt, demand):
        c = self.cmd
        target = (c["speed_ref_pct"] / 100.0 if self.drive == "vfd" else 1.0) if c["run_cmd"] else 0.0
        self.n = _ivp(self.rhs, dt, [self.n], (target,))[0]
        self.damper = min(max(c["damper_cmd_pct"], 0.0), 100.0) / 100.0
        self.q, self.dp, self.shaft_kw = self.operating_point(self.n, self.damper)
        self.elec_kw = self.electrical_kw(self.shaft_kw, self.n)
        self.energy_kwh += self.elec_kw * dt / 3600.0
        self.demand_m3s = demand * self.p["design_flow_m3s"]


class CompressorIvp:
    """Compressor station: states VSD speed s and header pressure p (bar abs),
    ds/dt = (ref - s)/tau, dp/dt = (p_atm/V)(q_fixed + q_vsd(s) - q_prod - q_leak p/p_nom),
    one coupled system; machine logic, powers and counters per step."""

    NAMES = ("c1", "c2", "c3", "vsd")

    def __init__(self, p, cmd, p0_bar, p_atm=1.01325):
        self.p, self.cmd, self.p_bar, self.p_atm = p, cmd, p0_bar, p_atm
        self.speed = 0.0
        self.state = {n: {"loaded": 0, "running": 0, "unload_s": 1e9, "kw": 0.0, "flow": 0.0,
                          "starts": [], "hours": 0.0} for n in self.NAMES}
        self.energy_kwh = self.total_kw = self.supply_m3min = 0.0

    def vsd_flow(self, speed, load_cmd):
        q = self.p["vsd_max_flow_m3min"] * speed
        return q if load_cmd and q >= self.p["vsd_min_flow_m3min"] else 0.0

    def rhs(self, t, y, ref, vsd_run, vsd_load, q_fixed, q_prod, q_leak, p_nom):
        s, pb = y
        ds = (ref - s) / self.p["speed_tau_s"] if vsd_run else 0.0
        q_in = q_fixed + (self.vsd_flow(s, vsd_load) if vsd_run else 0.0)
        return [ds, self.p_atm / self.p["volume_m3"] * (q_in - q_prod - q_leak * pb / p_nom) / 60.0]

    def step(self, t_s, dt, demand_m3min, leak_m3min, tripped=()):
        p = self.p
        pfac = 1 + p["power_per_bar"] * (self.p_bar - self.p_atm - p["rated_pressure_barg"])
        runs = {}
        for i, n in enumerate(self.NAMES):
            s, c = self.state[n], self.cmd[n]
            run = bool(c["run_cmd"]) and (i + 1) not in tripped
            if run and not s["running"]:
                s["starts"].append(t_s)
            s["running"] = int(run)
            s["starts"] = [x for x in s["starts"] if x > t_s - 3600]
            runs[n] = run
        q_fixed = sum(p["fixed_flow_m3min"] for n in self.NAMES[:3]
                      if runs[n] and self.cmd[n]["load_cmd"])
        cv = self.cmd["vsd"]
        ref = min(max(cv["speed_ref_pct"], 0.0), 100.0) / 100
        p_nom = p["rated_pressure_barg"] + self.p_atm
        if not runs["vsd"]:
            self.speed = 0.0
        self.speed, self.p_bar = _ivp(self.rhs, dt, [self.speed, self.p_bar],
                                      (ref, runs["vsd"], cv["load_cmd"], q_fixed, demand_m3min,
                                       leak_m3min, p_nom))
        self.p_bar = max(self.p_atm, self.p_bar)
        supply = total_kw = 0.0
        for n in self.NAMES:
            s, c = self.state[n], self.cmd[n]
            if not runs[n]:
                s.update(loaded=0, kw=0.0, flow=0.0, unload_s=1e9)
                continue
            s["hours"] += dt / 3600
            q = self.vsd_flow(self.speed, c["load_cmd"]) if n == "vsd" else \
                (p["fixed_flow_m3min"] if c["load_cmd"] else 0.0)
            if q > 0:
                kw0 = p["vsd_power_kw"] * (0.09 + 0.91 * q / p["vsd_max_flow_m3min"]) if n == "vsd" \
                    else p["fixed_power_kw"]
                s.update(loaded=1, flow=q, unload_s=0.0, kw=kw0 * pfac)
            else:
                s["unload_s"] = 0.0 if s["loaded"] else s["unload_s"] + dt
                if n == "vsd":
                    kw = p["vsd_power_kw"] * p["unload_end_frac"] * 0.5
                else:
                    blow = math.exp(-s["unload_s"] / p["blowdown_tau_s"])
                    kw = p["fixed_power_kw"] * (p["unload_end_frac"]
                                                + (p["unload_start_frac"] - p["unload_end_frac"]) * blow)
                s.update(loaded=0, flow=0.0, kw=kw)
            supply += s["flow"]
            total_kw += s["kw"]
        self.supply_m3min, self.total_kw = supply, total_kw
        self.energy_kwh += total_kw * dt / 3600


class ScrIvp:
    """SCR reactor: states theta_j (NH3 coverage of each cell), gas quasi-steady
    through the cells in series; returns the last cell's (c_no, c_nh3) in mol/m3."""

    def __init__(self, p, theta0):
        self.V, self.cells = p["volume_m3"], int(p["cells"])
        self.Ka, self.Kd_ref, self.Kr_ref, self.Ko_ref = p["Ka"], p["Kd_ref"], p["Kr_ref"], p["Ko_ref"]
        self.omega, self.alpha, self.Tref = p["omega"], p["alpha"], p["Tref_k"]
        self.Ed0, self.Er, self.Eo = p["Ed0_j_mol"], p["Er_j_mol"], p["Eo_j_mol"]
        self.theta = list(theta0)

    def arr(self, E, T):
        return math.exp(-(E / R) * (1 / T - 1 / self.Tref))

    def gas(self, th, F, T, cno, cnh3):
        """Each cell's outlet (c_no, c_nh3, Kd) at coverages th."""
        tau = self.V / self.cells / F
        Kr = self.Kr_ref * self.arr(self.Er, T)
        out = []
        for j in range(self.cells):
            Kd = self.Kd_ref * self.arr(self.Ed0, T) * math.exp(self.alpha * self.Ed0 * th[j] / (R * T))
            cno = cno / (1 + tau * Kr * self.omega * th[j])
            cnh3 = (cnh3 + tau * Kd * self.omega * th[j]) / (1 + tau * self.Ka * (1 - th[j]))
            out.append((cno, cnh3, Kd))
        return out

    def rhs(self, t, th, F, T, cno, cnh3):
        Kr, Ko = self.Kr_ref * self.arr(self.Er, T), self.Ko_ref * self.arr(self.Eo, T)
        return [self.Ka * c_nh3 / self.omega * (1 - th[j]) - (Kd + Kr * c_no + Ko) * th[j]
                for j, (c_no, c_nh3, Kd) in enumerate(self.gas(th, F, T, cno, cnh3))]

    def step(self, dt, F, T, cno, cnh3):
        self.theta = list(_ivp(self.rhs, dt, self.theta, (F, T, cno, cnh3)))
        c_no, c_nh3, _ = self.gas(self.theta, F, T, cno, cnh3)[-1]
        return c_no, c_nh3


M_GYPSUM, M_SULFITE = 172.17, 129.15


class FgdIvp:
    """FGD absorber: states M (limestone inventory), S (sulphur in the tank's
    solids) and Sul (its sulphite part), all kmol:
      pH = 5.5 + log10(M/M_ref), eta = 1 - exp(-ntu0 (n/4)^e 10^(slope (pH - 5.5)))
      dM/dt = feed - eta so2 - M/tau_bleed
      dS/dt = eta so2 - S/tau_s,  dSul/dt = eta so2 (1 - X(SR)) - Sul/tau_s
    with X = 1 - exp(-ox_k SR), SR = O2 blown / (eta so2 / 2)."""

    def __init__(self, p, M0, s0, sul0):
        self.p, self.M, self.s, self.sul = p, M0, s0, sul0
        self.tau, self.tau_s = p["tau_bleed_h"] * 3600.0, p["solids_tau_h"] * 3600.0

    def removal(self, M, n):
        p = self.p
        ph = 5.5 + math.log10(max(M, 1e-6 * p["M_ref_kmol"]) / p["M_ref_kmol"])
        if n <= 0:
            return ph, 0.0
        ntu = p["ntu0"] * (n / 4.0) ** p["ntu_pumps_exp"] * 10 ** (p["ntu_ph_slope"] * (ph - 5.5))
        return ph, 1 - math.exp(-ntu)

    def oxidised(self, absorbed, o2):
        sr = o2 / (0.5 * absorbed) if absorbed > 1e-12 else 1e3
        return sr, 1 - math.exp(-self.p["ox_k"] * max(sr, 0.0))

    def rhs(self, t, y, feed, so2, n, o2):
        absorbed = self.removal(y[0], n)[1] * so2
        x = self.oxidised(absorbed, o2)[1]
        return [feed - absorbed - y[0] / self.tau, absorbed - y[1] / self.tau_s,
                absorbed * (1 - x) - y[2] / self.tau_s]

    def step(self, dt, feed, so2, n, air_nm3h):
        o2 = air_nm3h * 0.2095 / 22.414 / 3600.0
        self.M, self.s, self.sul = _ivp(self.rhs, dt, [self.M, self.s, self.sul], (feed, so2, n, o2))
        self.ph, self.eta = self.removal(self.M, n)
        self.absorbed_kmol_s = self.eta * so2
        self.sr, self.ox_frac = self.oxidised(self.absorbed_kmol_s, o2)
        f = min(max(self.sul / self.s if self.s > 0 else 0.0, 0.0), 1.0)
        m_sul, m_gyp = f * M_SULFITE, (1 - f) * M_GYPSUM
        self.gypsum_purity = self.p["gypsum_purity_max"] * m_gyp / (m_sul + m_gyp)
        self.sulfite_mass = self.p["gypsum_purity_max"] * m_sul / (m_sul + m_gyp)
        return self.ph, self.eta
