"""Wet limestone FGD absorber (device "fgd", fgd profile).

Removal eta = 1 - exp(-NTU), NTU from the liquid-to-gas ratio (running
recirculation pumps against the gas flow: n x Q_design / Q pump equivalents at
the design flow, docs/models.md section 4: ~9000 m3/h per pump at 2e6 Nm3/h) and pH; limestone inventory M drives pH = 5.5 + log10(M/M_ref)
(cython_ext.plants.FgdInventory). Pumps draw pump_kw each while running; the
oxidation blower draws blower_kw_max x command and blows blower_air_max_nm3h x
command of air into the reaction tank; the limestone feeder delivers
feeder_max_kmol_s x command.

Forced oxidation (docs/models.md section 4, "Forced oxidation"): the sulphite
formed from the absorbed SO2 oxidises to sulphate with X = 1 - exp(-ox_k SR),
SR the O2 stoichiometric ratio (O2 blown in / (1/2 x SO2 absorbed)). What is
not oxidised leaves in the solids as CaSO3.1/2H2O: the tank's solids (a mixed
inventory with the solids residence time solids_tau_h) carry the sulphite and
set the gypsum purity and sulphite content, KPIs with limits (the KPI frame).

Everything the host reads is an instrument's output (tests/test_measured_inputs.py):
outlet SO2 through an analyzer with dead time and lag; inlet SO2 and O2 through
a CEMS rack, the flue-gas flow through a meter; pH through a probe (dead time,
lag, noise, calibration drift, wash and calibration holds) that can also drift
or stick by scenario; pump run feedback and feeder powers through the MCC's
feedback (run_fb_delay_s); the limestone feed through a weigh feeder (lag).
"""

import math
from collections import deque

import numpy as np

from controller.accounting import M_CACO3
from cython_ext import load
from hil_tests.plants.analyzer import Analyzer, Cems, FlowMeter, cems_params
from hil_tests.plants.base import Plant

M_SO2 = 64.066
M_GYPSUM = 172.17    # CaSO4.2H2O
M_SULFITE = 129.15   # CaSO3.1/2H2O
NM3_PER_KMOL = 22.414
O2_IN_AIR = 0.2095


def oxidation_fraction(sr, k):
    """Sulphite oxidised to sulphate at O2 stoichiometric ratio sr: 1 - exp(-k sr)."""
    return 1.0 - math.exp(-k * max(sr, 0.0))


def solids_quality(sulfite_mol_frac, purity_max):
    """(gypsum purity, CaSO3.1/2H2O mass fraction) of the dewatered solids when
    sulfite_mol_frac of their calcium-sulphur salt is sulphite; purity_max is
    the purity of fully oxidised solids (inerts, unreacted limestone)."""
    s = min(max(sulfite_mol_frac, 0.0), 1.0)
    m_sul, m_gyp = s * M_SULFITE, (1.0 - s) * M_GYPSUM
    salts = m_sul + m_gyp
    return purity_max * m_gyp / salts, purity_max * m_sul / salts


class FgdPlant(Plant):
    DEVICES = {"fgd": "fgd"}
    PARAMS = {
        "flow_full_nm3h": (2.0e6, 1e3, 1e8), "pumps": (5, 1, 5), "pump_kw": (730.0, 1.0, 1e4),
        "feeder_max_kmol_s": (0.04, 1e-4, 10.0), "blower_kw_max": (800.0, 0.0, 1e4),
        "M0_kmol": (100.0, 1e-3, 1e5), "M_ref_kmol": (100.0, 1e-3, 1e5), "tau_bleed_h": (15.0, 0.1, 500.0),
        "analyzer_dead_time_s": (60.0, 0.0, 900.0), "analyzer_lag_s": (20.0, 0.1, 600.0),
        "analyzer_noise_mg": (0.2, 0.0, 50.0),
        "o2_pct": (6.0, 0.0, 20.0),
        # The removal correlation NTU = ntu0 (n/4)^ntu_pumps_exp 10^(ntu_ph_slope (pH - 5.5))
        # (docs/models.md section 4): the plant's, which a family run draws apart
        # from the strategy's configured copy (docs/models.md, "Model mismatch").
        "ntu0": (4.42, 0.1, 50.0), "ntu_pumps_exp": (0.6, 0.05, 3.0),
        "ntu_ph_slope": (0.25, 0.01, 2.0),
        # Forced oxidation (docs/models.md section 4).
        "blower_air_max_nm3h": (14000.0, 0.0, 1e6), "ox_k": (2.1, 0.01, 20.0),
        "solids_tau_h": (15.0, 0.1, 500.0), "gypsum_purity_max": (0.96, 0.5, 1.0),
        # The pH probe (dead time, lag, noise, drift, weekly buffer calibration,
        # a wash every 8 h; output held during both), run feedback, weigh feeder.
        **cems_params("ph", 5.0, 30.0, 0.01, 0.05, 168.0, 900.0, 50.0, 8.0, 120.0, 1.5,
                      noise_max=1.0),
        "run_fb_delay_s": (2.0, 0.0, 60.0), "feed_lag_s": (10.0, 0.0, 600.0),
        # The inlet instruments the strategy reads (docs/models.md, "Instruments"):
        # inlet SO2 and O2 (one extractive CEMS rack), flue-gas flow.
        **cems_params("so2_in", 60.0, 20.0, 10.0, 50.0, 24.0, 600.0, 4.0, 2.0, 240.0, 0.75),
        **cems_params("o2", 60.0, 20.0, 0.05, 0.1, 24.0, 600.0, 4.0, 2.0, 240.0, 0.75),
        "flow_bias_frac": (0.03, -0.5, 0.5), "flow_noise_frac": (0.01, 0.0, 0.2),
        "flow_lag_s": (5.0, 0.0, 600.0),
    }
    SPEC = {"profiles": {"load_pct": (0.0, 120.0), "so2_in_mg_nm3": (0.0, 10000.0)},
            "events": {"pump_trip": {"pump": (1, 5)}, "ph_drift": {"ph_per_h": (-2, 2)},
                       "ph_stuck": {}, "so2_step": {"frac": (-0.9, 3.0)},
                       "analyzer_fault": {}, "wire_break": {}},
            "signals": {"fgd": ("so2_in_mg_nm3", "so2_out_mg_nm3", "ph", "o2_pct",
                                "flue_gas_flow_nm3h", "limestone_feed_tph", "blower_power_kw")
                        + tuple("pump%d_power_kw" % i for i in range(1, 6))}}

    def __init__(self, name, scenario, params=None, options=None):
        super().__init__(name, scenario, params, options)
        p = self.p
        self.inv = load("plants").FgdInventory(p["M0_kmol"], p["M_ref_kmol"], p["tau_bleed_h"] * 3600,
                                              ntu0=p["ntu0"], pumps_exp=p["ntu_pumps_exp"],
                                              ph_slope=p["ntu_ph_slope"])
        dt = scenario.step_s
        self.an = Analyzer(dt, p["analyzer_dead_time_s"], p["analyzer_lag_s"])
        for i in range(1, 6):
            self.cmd["fgd"]["pump%d_run" % i] = 0
        self.cmd["fgd"].update(feeder_cmd_pct=0.0, blower_cmd_pct=0.0)
        self._rng = np.random.default_rng(scenario.seed + 41)
        self._ph_stuck = None
        self.running = [0] * 5
        self.so2_in = self.so2_out = 0.0
        self.q_nm3h = 1.0
        self.feed_kmol_s = 0.0
        self.pump_kw = [0.0] * 5
        self.blower_kw = 0.0
        self.so2_kmol_s = 0.0
        self.ph, self.eta = self.inv.step(0.0, 0.0, 0.0, 0.0)
        # Oxidation: the tank's solids as a running unit holds them at t = 0 (the
        # design ratio SR_DESIGN at the t = 0 SO2 load): sulphur in the solids
        # [kmol], its sulphite part.
        so2_0 = (scenario.profiles["so2_in_mg_nm3"].base(0.0) * 1e-6 * p["flow_full_nm3h"]
                 * scenario.profiles["load_pct"].base(0.0) / 100.0 / 3600.0 / M_SO2)
        tau = p["solids_tau_h"] * 3600.0
        self.s_kmol = max(so2_0, 1e-9) * tau
        self.sul_kmol = self.s_kmol * (1.0 - oxidation_fraction(self.SR_DESIGN, p["ox_k"]))
        self.air_nm3h = 0.0
        self.sr = self.SR_DESIGN
        self.ox_frac = oxidation_fraction(self.SR_DESIGN, p["ox_k"])
        self.sulfite_frac = self.sul_kmol / self.s_kmol
        self.gypsum_purity, self.sulfite_mass = solids_quality(self.sulfite_frac,
                                                               p["gypsum_purity_max"])
        # The instruments, each at the t = 0 conditions (the unit is running).
        sd = scenario.seed
        q0 = max(p["flow_full_nm3h"] * scenario.profiles["load_pct"].base(0.0) / 100.0, 1.0)
        self.so2_in_an = Cems.from_params(p, "so2_in", dt,
                                          scenario.profiles["so2_in_mg_nm3"].base(0.0), [sd, 411])
        self.o2_an = Cems.from_params(p, "o2", dt, p["o2_pct"], [sd, 412])
        self.flow_m = FlowMeter(dt, p["flow_bias_frac"], p["flow_noise_frac"], p["flow_lag_s"],
                                q0, [sd, 413])
        self.ph_probe = Cems.from_params(p, "ph", dt, self.ph, [sd, 414])
        self.feed_m = FlowMeter(dt, 0.0, 0.0, p["feed_lag_s"], 0.0, [sd, 415])
        n_fb = max(1, int(round(p["run_fb_delay_s"] / dt)) + 1)
        self.run_fb = deque([(0,) * 5] * n_fb, maxlen=n_fb)   # the MCC's run feedbacks
        self.kw_meter = (0.0,) * 6                              # pumps 1-5 and blower

    SR_DESIGN = 3.0   # the t = 0 solids: oxidised at the design ratio

    def step(self, t_s, dt_s):
        sc, p = self.sc, self.p
        load_pct = sc.profiles["load_pct"](t_s)
        self.q_nm3h = max(p["flow_full_nm3h"] * load_pct / 100.0, 1.0)
        so2 = sc.profiles["so2_in_mg_nm3"](t_s)
        so2 *= 1 + sum(e.fields["frac"] for e in sc.active("so2_step", t_s))
        self.so2_in = max(so2, 0.0)
        tripped = {int(e.fields["pump"]) for e in sc.active("pump_trip", t_s)}
        c = self.cmd["fgd"]
        self.running = [int(bool(c["pump%d_run" % i]) and i not in tripped and i <= p["pumps"])
                        for i in range(1, 6)]
        self.pump_kw = [p["pump_kw"] * r for r in self.running]
        self.feed_kmol_s = p["feeder_max_kmol_s"] * min(max(c["feeder_cmd_pct"], 0.0), 100.0) / 100
        self.blower_kw = p["blower_kw_max"] * min(max(c["blower_cmd_pct"], 0.0), 100.0) / 100
        so2_kmol_s = self.so2_in * 1e-6 * self.q_nm3h / 3600.0 / M_SO2
        self.so2_kmol_s = so2_kmol_s
        # Liquid-to-gas ratio: each pump's slurry against the gas it meets. The
        # NTU correlation counts pumps at the design gas flow; at part load the
        # same pumps wash less gas (L/G higher), as design-flow pump equivalents.
        n_eq = float(sum(self.running)) * p["flow_full_nm3h"] / self.q_nm3h
        ph, eta = self.inv.step(dt_s, self.feed_kmol_s, so2_kmol_s, n_eq)
        self.ph, self.eta = ph, eta
        self.so2_out = self.so2_in * (1 - eta)
        self._oxidation(dt_s, c)
        self.an.step(self.so2_out)
        self.so2_in_an.step(t_s, self.so2_in)
        self.o2_an.step(t_s, p["o2_pct"])
        self.flow_m.step(self.q_nm3h)
        self.ph_probe.step(t_s, self.ph)
        self.feed_m.step(self.feed_kmol_s * M_CACO3 * 3.6)
        self.run_fb.append(tuple(self.running))
        self.kw_meter = tuple(self.pump_kw) + (self.blower_kw,)
        self.t_s = t_s + dt_s

    def _oxidation(self, dt_s, c):
        """Forced oxidation of the SO2 absorbed this step and the tank's solids."""
        p = self.p
        self.air_nm3h = p["blower_air_max_nm3h"] * min(max(c["blower_cmd_pct"], 0.0), 100.0) / 100
        absorbed = self.inv.absorbed_kmol_s
        o2_kmol_s = self.air_nm3h * O2_IN_AIR / NM3_PER_KMOL / 3600.0
        self.sr = o2_kmol_s / (0.5 * absorbed) if absorbed > 1e-12 else 1e3
        self.ox_frac = oxidation_fraction(self.sr, p["ox_k"])
        a = dt_s / (p["solids_tau_h"] * 3600.0)
        self.s_kmol += absorbed * dt_s - a * self.s_kmol
        self.sul_kmol += absorbed * (1.0 - self.ox_frac) * dt_s - a * self.sul_kmol
        self.sulfite_frac = self.sul_kmol / self.s_kmol if self.s_kmol > 0 else 0.0
        self.gypsum_purity, self.sulfite_mass = solids_quality(self.sulfite_frac,
                                                               p["gypsum_purity_max"])

    def measure(self):
        sc, t, p = self.sc, self.t_s, self.p
        ph = self.ph_probe.reading(t)
        ph += sum(e.fields["ph_per_h"] * (t - e.at_s) / 3600 for e in sc.active("ph_drift", t))
        if sc.active("ph_stuck", t):
            self._ph_stuck = ph if self._ph_stuck is None else self._ph_stuck
            ph = self._ph_stuck
        else:
            self._ph_stuck = None
        fault = bool(sc.active("analyzer_fault", t) or sc.active("wire_break", t))
        so2 = self.an.reading() + p["analyzer_noise_mg"] * self._rng.standard_normal()
        c = self.cmd["fgd"]
        # Every gas point is an instrument's output, never the plant's state:
        # tests/test_measured_inputs.py.
        m = {"so2_in_mg_nm3": self.so2_in_an.reading(t),
             "so2_out_mg_nm3": float("nan") if fault else max(so2, 0.0),
             "ph": ph, "o2_pct": self.o2_an.reading(t), "flue_gas_flow_nm3h": self.flow_m.reading(),
             "limestone_feed_tph": self.feed_m.reading(), "blower_power_kw": self.kw_meter[5],
             "feeder_pos_pct": c["feeder_cmd_pct"], "blower_pos_pct": c["blower_cmd_pct"],
             "so2_analyzer_fault": int(fault)}
        fb = self.run_fb[0]
        for i in range(5):
            m["pump%d_running" % (i + 1)] = fb[i]
            m["pump%d_power_kw" % (i + 1)] = self.kw_meter[i]
        return {"fgd": m, "process": {}}

    def truth(self):
        kw = {"pump%d" % (i + 1): self.pump_kw[i] for i in range(5)}
        kw["blower"] = self.blower_kw
        return {"power_kw": kw, "so2_out_mg_nm3": self.so2_out, "o2_pct": self.p["o2_pct"],
                "ph": self.ph, "limestone_kmol_s": self.feed_kmol_s, "so2_in_mg_nm3": self.so2_in,
                "so2_absorbed_kmol_s": self.inv.absorbed_kmol_s, "inventory_kmol": self.inv.M_kmol,
                # Forced oxidation: O2 ratio, fraction oxidised now, the solids.
                "oxidation_sr": self.sr, "oxidation_frac": self.ox_frac,
                "gypsum_purity": self.gypsum_purity, "sulfite_mass_frac": self.sulfite_mass,
                # The stack (outlet) CEMS: minutes it has no valid value (the KPI frame).
                "cems_fault": bool(self.sc.active("analyzer_fault", self.t_s)
                                   or self.sc.active("wire_break", self.t_s))}
