# cython: language_level=3
"""Plant steppers: the inner integrators of the plant simulators.

Equations and parameter sources: docs/models.md. Each stepper advances
its state over dt seconds in sub-steps no longer than max_substep_s, using the
exact solution of the linear ODE obtained by freezing the coefficients over a
sub-step (unconditionally stable, exact for the linear parts).

- ScrReactor: control-oriented SCR (Lietti et al. 1997 kinetic form), cells in
  series, gas quasi-steady, NH3 surface coverage theta per cell.
  Units: F actual gas flow m3/s, T K, concentrations mol/m3, rates per docs/models.md section 3.
- FgdInventory: limestone inventory M (kmol) -> pH -> removal efficiency.
- AirHeader: compressed-air header absolute pressure (bar) from free-air flows (m3/s).
"""

cimport cython
from libc.math cimport ceil, exp, expm1, log10, pow

import numpy as np

R_GAS = 8.314462618


cdef class ScrReactor:
    cdef public double V_m3, Ka, Kd_ref, Kr_ref, Ko_ref, omega, Ed0, Er, Eo, alpha, Tref_K
    cdef public double max_substep_s
    cdef double[::1] _theta
    cdef readonly object theta
    cdef readonly double c_no_out, c_nh3_out
    cdef readonly Py_ssize_t cells

    def __init__(self, V_m3=700.0, cells=3, Ka=30.0, Kd_ref=5e-4, Kr_ref=10.0, Ko_ref=1e-4,
                 omega=3.0, Ed0=100e3, Er=60e3, Eo=150e3, alpha=0.4, Tref_K=643.0,
                 max_substep_s=5.0, theta0=0.0):
        for name, v in (("V_m3", V_m3), ("Ka", Ka), ("Kd_ref", Kd_ref), ("Kr_ref", Kr_ref),
                        ("omega", omega), ("Tref_K", Tref_K), ("max_substep_s", max_substep_s)):
            if not float(v) > 0:
                raise ValueError("ScrReactor %s = %r: must be > 0" % (name, v))
        if cells < 1:
            raise ValueError("ScrReactor cells = %r: must be >= 1" % cells)
        if not 0 <= theta0 <= 1:
            raise ValueError("ScrReactor theta0 = %r outside 0..1" % theta0)
        self.V_m3, self.Ka, self.Kd_ref, self.Kr_ref, self.Ko_ref = V_m3, Ka, Kd_ref, Kr_ref, Ko_ref
        self.omega, self.Ed0, self.Er, self.Eo, self.alpha = omega, Ed0, Er, Eo, alpha
        self.Tref_K, self.max_substep_s = Tref_K, max_substep_s
        self.cells = cells
        self.theta = np.full(cells, float(theta0))
        self._theta = self.theta

    @cython.boundscheck(False)
    @cython.wraparound(False)
    @cython.cdivision(True)
    cdef void _gas(self, double tau_cell, double T, double c_no_in, double c_nh3_in,
                   double Kr, double* c_no, double* c_nh3) noexcept nogil:
        cdef Py_ssize_t j
        cdef double th, Kd
        cdef double arr = -(self.Ed0 / 8.314462618) * (1.0 / T - 1.0 / self.Tref_K)
        for j in range(self.cells):
            th = self._theta[j]
            Kd = self.Kd_ref * exp(arr) * exp(self.alpha * self.Ed0 * th / (8.314462618 * T))
            c_no_in = c_no_in / (1.0 + tau_cell * Kr * self.omega * th)
            c_nh3_in = (c_nh3_in + tau_cell * Kd * self.omega * th) / (1.0 + tau_cell * self.Ka * (1.0 - th))
            c_no[j] = c_no_in
            c_nh3[j] = c_nh3_in

    @cython.boundscheck(False)
    @cython.wraparound(False)
    @cython.cdivision(True)
    def step(self, double dt_s, double F_m3s, double T_K, double c_no_in, double c_nh3_in):
        """Advance dt_s; returns (c_no_out, c_nh3_out) in mol/m3 at the last cell."""
        if not dt_s >= 0:
            raise ValueError("dt_s = %r: must be >= 0" % dt_s)
        if not (F_m3s > 0 and T_K > 0 and c_no_in >= 0 and c_nh3_in >= 0):
            raise ValueError("ScrReactor inputs out of range: F=%r T=%r c_no=%r c_nh3=%r"
                             % (F_m3s, T_K, c_no_in, c_nh3_in))
        cdef double c_no[64]
        cdef double c_nh3[64]
        if self.cells > 64:
            raise ValueError("at most 64 cells")
        cdef Py_ssize_t j, k, nsub = <Py_ssize_t>ceil(dt_s / self.max_substep_s)
        cdef double h, th, Kd, a, b, arr
        cdef double tau_cell = self.V_m3 / self.cells / F_m3s
        cdef double Kr = self.Kr_ref * exp(-(self.Er / 8.314462618) * (1.0 / T_K - 1.0 / self.Tref_K))
        cdef double Ko = self.Ko_ref * exp(-(self.Eo / 8.314462618) * (1.0 / T_K - 1.0 / self.Tref_K))
        arr = -(self.Ed0 / 8.314462618) * (1.0 / T_K - 1.0 / self.Tref_K)
        with nogil:
            if nsub > 0:
                h = dt_s / nsub
            for k in range(nsub):
                self._gas(tau_cell, T_K, c_no_in, c_nh3_in, Kr, c_no, c_nh3)
                for j in range(self.cells):
                    th = self._theta[j]
                    Kd = self.Kd_ref * exp(arr) * exp(self.alpha * self.Ed0 * th / (8.314462618 * T_K))
                    a = self.Ka * c_nh3[j] / self.omega
                    b = Kd + Kr * c_no[j] + Ko
                    # Exact for frozen a, b; written with expm1 so that a tiny a + b
                    # neither overflows nor cancels.
                    self._theta[j] = th + (a - (a + b) * th) * (-expm1(-(a + b) * h) / (a + b))
            self._gas(tau_cell, T_K, c_no_in, c_nh3_in, Kr, c_no, c_nh3)
        self.c_no_out = c_no[self.cells - 1]
        self.c_nh3_out = c_nh3[self.cells - 1]
        return self.c_no_out, self.c_nh3_out


cdef class FgdInventory:
    cdef public double M_ref_kmol, tau_bleed_s, ntu0, pumps_ref, pumps_exp, ph_ref, ph_slope
    cdef public double max_substep_s
    cdef readonly double M_kmol, ph, eta, absorbed_kmol_s

    def __init__(self, M0_kmol=100.0, M_ref_kmol=100.0, tau_bleed_s=15 * 3600.0, ntu0=4.42,
                 pumps_ref=4.0, pumps_exp=0.6, ph_ref=5.5, ph_slope=0.25, max_substep_s=10.0):
        for name, v in (("M0_kmol", M0_kmol), ("M_ref_kmol", M_ref_kmol),
                        ("tau_bleed_s", tau_bleed_s), ("ntu0", ntu0), ("pumps_ref", pumps_ref),
                        ("max_substep_s", max_substep_s)):
            if not float(v) > 0:
                raise ValueError("FgdInventory %s = %r: must be > 0" % (name, v))
        self.M_kmol, self.M_ref_kmol, self.tau_bleed_s = M0_kmol, M_ref_kmol, tau_bleed_s
        self.ntu0, self.pumps_ref, self.pumps_exp = ntu0, pumps_ref, pumps_exp
        self.ph_ref, self.ph_slope, self.max_substep_s = ph_ref, ph_slope, max_substep_s
        self._update(0.0)

    cdef inline void _update(self, double n_pumps) noexcept nogil:
        cdef double ntu
        self.ph = self.ph_ref + log10(self.M_kmol / self.M_ref_kmol)
        if n_pumps <= 0:
            self.eta = 0.0
            return
        ntu = self.ntu0 * pow(n_pumps / self.pumps_ref, self.pumps_exp) * pow(10.0, self.ph_slope * (self.ph - self.ph_ref))
        self.eta = 1.0 - exp(-ntu)

    @cython.cdivision(True)
    def step(self, double dt_s, double feed_kmol_s, double so2_in_kmol_s, double n_pumps):
        """Advance dt_s; returns (ph, eta). Explicit Euler per sub-step (time
        constants are tens of minutes; sub-steps are seconds)."""
        if not (dt_s >= 0 and feed_kmol_s >= 0 and so2_in_kmol_s >= 0 and n_pumps >= 0):
            raise ValueError("FgdInventory inputs out of range: dt=%r feed=%r so2=%r pumps=%r"
                             % (dt_s, feed_kmol_s, so2_in_kmol_s, n_pumps))
        cdef Py_ssize_t k, nsub = <Py_ssize_t>ceil(dt_s / self.max_substep_s)
        cdef double h = dt_s / nsub if nsub > 0 else 0.0
        with nogil:
            for k in range(nsub):
                self._update(n_pumps)
                self.absorbed_kmol_s = self.eta * so2_in_kmol_s
                self.M_kmol += h * (feed_kmol_s - self.absorbed_kmol_s - self.M_kmol / self.tau_bleed_s)
                if self.M_kmol < 1e-6 * self.M_ref_kmol:
                    self.M_kmol = 1e-6 * self.M_ref_kmol
            self._update(n_pumps)
            self.absorbed_kmol_s = self.eta * so2_in_kmol_s
        return self.ph, self.eta


cdef class AirHeader:
    cdef public double V_m3, p_atm_bar
    cdef readonly double p_bar

    def __init__(self, V_m3=13.0, p0_bar=7.0 + 1.01325, p_atm_bar=1.01325):
        if not (V_m3 > 0 and p_atm_bar > 0 and p0_bar >= p_atm_bar):
            raise ValueError("AirHeader: V_m3=%r p0_bar=%r p_atm_bar=%r out of range"
                             % (V_m3, p0_bar, p_atm_bar))
        self.V_m3, self.p_bar, self.p_atm_bar = V_m3, p0_bar, p_atm_bar

    @cython.cdivision(True)
    def step(self, double dt_s, double q_supply_m3s, double q_prod_m3s, double q_leak_nom_m3s,
             double p_nom_bar):
        """Advance dt_s; returns absolute pressure (bar). Flows are free air.

        dp/dt = (p_atm/V)(q_supply - q_prod - q_leak_nom p/p_nom), solved exactly
        for constant flows; the header never falls below atmosphere."""
        if not (dt_s >= 0 and q_supply_m3s >= 0 and q_prod_m3s >= 0 and q_leak_nom_m3s >= 0
                and p_nom_bar > 0):
            raise ValueError("AirHeader inputs out of range")
        cdef double c = self.p_atm_bar / self.V_m3
        cdef double alpha = c * (q_supply_m3s - q_prod_m3s)
        cdef double beta = c * q_leak_nom_m3s / p_nom_bar
        cdef double f = dt_s
        if beta > 0:
            f = -expm1(-beta * dt_s) / beta  # exact; -> dt_s as beta -> 0 without overflow
        self.p_bar += (alpha - beta * self.p_bar) * f
        if self.p_bar < self.p_atm_bar:
            self.p_bar = self.p_atm_bar
        return self.p_bar
