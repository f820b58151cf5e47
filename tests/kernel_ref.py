"""Plain-Python reference implementations of the Cython kernels (tests only).

Written from the kernels' documented laws, loop by loop and sample by sample,
with no numpy tricks, so a disagreement points at the kernel.
"""

import math


def clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


class PidRef:
    """One loop of cython_ext.pid.PidBank."""

    def __init__(self, kp=1.0, ti=math.inf, td=0.0, tf=1.0, b=1.0, c=0.0, tt=math.inf,
                 umin=-math.inf, umax=math.inf, rate=math.inf, dt=1.0):
        self.p = dict(kp=kp, ti=ti, td=td, tf=tf, b=b, c=c, tt=tt, umin=umin, umax=umax,
                      rate=rate, dt=dt)
        self.I = self.D = self.e_prev = self.u_prev = 0.0
        self.kp_last = self.b_last = 0.0
        self.init = False
        self.auto = True
        self.held = False
        self.u_man = 0.0

    def step(self, sp, pv, ff=0.0, u_track=0.0):
        p = self.p
        kp, ti, td, tf, b, c, tt = p["kp"], p["ti"], p["td"], p["tf"], p["b"], p["c"], p["tt"]
        umin, umax, rate, dt = p["umin"], p["umax"], p["rate"], p["dt"]
        e_p = b * sp - pv
        e_d = c * sp - pv
        if not self.init:
            self.e_prev = e_d
            self.u_prev = clamp(self.u_man, umin, umax)
            self.kp_last, self.b_last = kp, b
            self.init = True
            self.D = 0.0
        if kp != self.kp_last or b != self.b_last:
            self.I += self.kp_last * (self.b_last * sp - pv) - kp * e_p
            self.kp_last, self.b_last = kp, b
        P = kp * e_p
        if td > 0:
            self.D = (tf / (tf + dt)) * self.D + (kp * td / (tf + dt)) * (e_d - self.e_prev)
        else:
            self.D = 0.0
        self.e_prev = e_d
        v = P + self.I + self.D + ff
        if not self.auto:
            a = clamp(self.u_man, umin, umax)
            self.I = a - P - self.D - ff
        elif self.held:
            a = u_track
            self.I = a - P - self.D - ff
        else:
            a = clamp(v, umin, umax)
            if math.isfinite(rate):
                a = clamp(a, self.u_prev - rate * dt, self.u_prev + rate * dt)
            self.I += kp * dt / ti * (sp - pv) + dt / tt * (a - v)
            self.u_man = a
        self.u_prev = a
        return a


class LagRef:
    def __init__(self, tau, dt, y0=0.0):
        self.a = math.exp(-dt / tau)
        self.y = y0

    def step(self, x):
        self.y = self.a * self.y + (1 - self.a) * x
        return self.y


class LeadLagRef:
    def __init__(self, lead, lag, dt, y0=0.0):
        self.r = lead / lag
        self.z = LagRef(lag, dt, y0)

    def step(self, x):
        return self.r * x + (1 - self.r) * self.z.step(x)


class RateLimiterRef:
    def __init__(self, rate, dt, y0=0.0):
        self.m = rate * dt
        self.y = y0

    def step(self, x):
        self.y += clamp(x - self.y, -self.m, self.m)
        return self.y


class MovingAverageRef:
    def __init__(self, w):
        self.w = w
        self.h = []

    def step(self, x):
        self.h.append(x)
        self.h = self.h[-self.w:]
        return math.fsum(self.h) / len(self.h)


class Median3Ref:
    def __init__(self):
        self.h = []

    def step(self, x):
        self.h = (self.h + [x])[-3:]
        if len(self.h) < 3:
            return x
        return sorted(self.h)[1]


class HysteresisRef:
    def __init__(self, on, off, y0=0):
        self.on, self.off, self.y = on, off, y0

    def step(self, x):
        if x >= self.on:
            self.y = 1
        elif x <= self.off:
            self.y = 0
        return self.y


class DelayLineRef:
    """y = x(t - d) from the stored history, linear between samples."""

    def __init__(self, max_delay, dt, x0=0.0):
        self.dt = dt
        self.m = int(math.floor(max_delay / dt)) + 2
        self.h = [x0] * self.m

    def step(self, x, d):
        self.h = self.h[1:] + [x]
        k = d / self.dt
        k0 = int(math.floor(k))
        f = k - k0
        newest = len(self.h) - 1
        a = self.h[(newest - k0) % self.m]
        if f == 0:
            return a
        b = self.h[(newest - k0 - 1) % self.m]
        return (1 - f) * a + f * b


class SmithRef:
    def __init__(self, dt, max_delay, k, tau, theta):
        self.dt, self.k, self.tau, self.theta = dt, k, tau, theta
        self.ym = 0.0
        self.line = DelayLineRef(max_delay, dt)

    def step(self, u_prev, pv):
        a = math.exp(-self.dt / self.tau)
        self.ym = a * self.ym + self.k * (1 - a) * u_prev
        return pv + self.ym - self.line.step(self.ym, self.theta)


R = 8.314462618


class ScrRef:
    def __init__(self, V=700.0, cells=3, Ka=30.0, Kd_ref=5e-4, Kr_ref=10.0, Ko_ref=1e-4,
                 omega=3.0, Ed0=100e3, Er=60e3, Eo=150e3, alpha=0.4, Tref=643.0, max_sub=5.0):
        self.__dict__.update(V=V, cells=cells, Ka=Ka, Kd_ref=Kd_ref, Kr_ref=Kr_ref,
                             Ko_ref=Ko_ref, omega=omega, Ed0=Ed0, Er=Er, Eo=Eo, alpha=alpha,
                             Tref=Tref, max_sub=max_sub)
        self.theta = [0.0] * cells

    def _kd(self, T, th):
        return (self.Kd_ref * math.exp(-(self.Ed0 / R) * (1 / T - 1 / self.Tref))
                * math.exp(self.alpha * self.Ed0 * th / (R * T)))

    def _gas(self, tau, T, cno, cnh3, Kr):
        out = []
        for th in self.theta:
            cno = cno / (1 + tau * Kr * self.omega * th)
            cnh3 = (cnh3 + tau * self._kd(T, th) * self.omega * th) / (1 + tau * self.Ka * (1 - th))
            out.append((cno, cnh3))
        return out

    def step(self, dt, F, T, cno, cnh3):
        n = int(math.ceil(dt / self.max_sub))
        tau = self.V / self.cells / F
        Kr = self.Kr_ref * math.exp(-(self.Er / R) * (1 / T - 1 / self.Tref))
        Ko = self.Ko_ref * math.exp(-(self.Eo / R) * (1 / T - 1 / self.Tref))
        for _ in range(n):
            gas = self._gas(tau, T, cno, cnh3, Kr)
            for j, th in enumerate(self.theta):
                a = self.Ka * gas[j][1] / self.omega
                b = self._kd(T, th) + Kr * gas[j][0] + Ko
                self.theta[j] = th + (a - (a + b) * th) * (-math.expm1(-(a + b) * dt / n) / (a + b))
        return self._gas(tau, T, cno, cnh3, Kr)[-1]


class FgdRef:
    def __init__(self, M0=100.0, M_ref=100.0, tau=15 * 3600.0, max_sub=10.0):
        self.M, self.M_ref, self.tau, self.max_sub = M0, M_ref, tau, max_sub

    def eta(self, n):
        ph = 5.5 + math.log10(self.M / self.M_ref)
        if n <= 0:
            return ph, 0.0
        return ph, 1 - math.exp(-4.42 * (n / 4) ** 0.6 * 10 ** (0.25 * (ph - 5.5)))

    def step(self, dt, feed, so2, n):
        k = int(math.ceil(dt / self.max_sub))
        for _ in range(k):
            _, eta = self.eta(n)
            self.M += dt / k * (feed - eta * so2 - self.M / self.tau)
            self.M = max(self.M, 1e-6 * self.M_ref)
        return self.eta(n)


class AirRef:
    def __init__(self, V=13.0, p0=8.01325, patm=1.01325):
        self.V, self.p, self.patm = V, p0, patm

    def step(self, dt, q_in, q_prod, q_leak, p_nom):
        c = self.patm / self.V
        alpha, beta = c * (q_in - q_prod), c * q_leak / p_nom
        f = -math.expm1(-beta * dt) / beta if beta > 0 else dt
        self.p += (alpha - beta * self.p) * f
        self.p = max(self.p, self.patm)
        return self.p
