"""Peer for the plants benchmark: the same plant models written the plain way,
in pure Python with scipy.integrate.solve_ivp over each 1 s input interval."""

import math

from scipy.integrate import solve_ivp

R = 8.314462618


class ScrIvp:
    def __init__(self, V=700.0, cells=3, Ka=30.0, Kd_ref=5e-4, Kr_ref=10.0, Ko_ref=1e-4,
                 omega=3.0, Ed0=100e3, Er=60e3, Eo=150e3, alpha=0.4, Tref=643.0):
        self.__dict__.update(V=V, cells=cells, Ka=Ka, Kd_ref=Kd_ref, Kr_ref=Kr_ref, Ko_ref=Ko_ref,
                             omega=omega, Ed0=Ed0, Er=Er, Eo=Eo, alpha=alpha, Tref=Tref)
        self.theta = [0.0] * cells

    def rhs(self, t, th, F, T, cno, cnh3):
        tau = self.V / self.cells / F
        arr = lambda E: math.exp(-(E / R) * (1 / T - 1 / self.Tref))
        Kr, Ko = self.Kr_ref * arr(self.Er), self.Ko_ref * arr(self.Eo)
        out = []
        for j in range(self.cells):
            Kd = self.Kd_ref * arr(self.Ed0) * math.exp(self.alpha * self.Ed0 * th[j] / (R * T))
            cno = cno / (1 + tau * Kr * self.omega * th[j])
            cnh3 = (cnh3 + tau * Kd * self.omega * th[j]) / (1 + tau * self.Ka * (1 - th[j]))
            out.append((self.Ka * cnh3 * (1 - th[j]) - (Kd + Kr * cno + Ko) * self.omega * th[j]) / self.omega)
        return out

    def step(self, dt, F, T, cno, cnh3):
        sol = solve_ivp(self.rhs, (0, dt), self.theta, args=(F, T, cno, cnh3), rtol=1e-6)
        self.theta = list(sol.y[:, -1])


class FgdIvp:
    def __init__(self, M0=100.0, M_ref=100.0, tau=15 * 3600.0):
        self.M, self.M_ref, self.tau = M0, M_ref, tau

    def rhs(self, t, y, feed, so2, n):
        ph = 5.5 + math.log10(max(y[0], 1e-9) / self.M_ref)
        eta = 1 - math.exp(-4.42 * (n / 4) ** 0.6 * 10 ** (0.25 * (ph - 5.5))) if n > 0 else 0.0
        return [feed - eta * so2 - y[0] / self.tau]

    def step(self, dt, feed, so2, n):
        self.M = solve_ivp(self.rhs, (0, dt), [self.M], args=(feed, so2, n), rtol=1e-6).y[0, -1]


class HeaderIvp:
    def __init__(self, V=13.0, p0=8.01325, patm=1.01325):
        self.V, self.p, self.patm = V, p0, patm

    def rhs(self, t, y, q_in, q_prod, q_leak, p_nom):
        return [self.patm / self.V * (q_in - q_prod - q_leak * y[0] / p_nom)]

    def step(self, dt, q_in, q_prod, q_leak, p_nom):
        self.p = max(self.patm, solve_ivp(self.rhs, (0, dt), [self.p],
                                          args=(q_in, q_prod, q_leak, p_nom), rtol=1e-6).y[0, -1])


class SpeedIvp:
    """Fan/pump: the only state is the drive's speed lag; the rest is algebraic."""

    def __init__(self, tau=5.0):
        self.n, self.tau = 0.0, tau

    def step(self, dt, target):
        self.n = solve_ivp(lambda t, y: [(target - y[0]) / self.tau], (0, dt), [self.n],
                           rtol=1e-6).y[0, -1]
