"""kernels: per loop-step cost of the PID bank beside two peers, same run.

- greenedge: cython_ext.pid.PidBank (fused nogil loop over struct-of-arrays).
- numpy: bench/peers/numpy_pid.py, the same law vectorised with numpy as an
  expert writes it: coefficients derived once when the tunings are set (as the
  bank does), preallocated buffers, rare paths only when a loop needs them.
  Before timing, both run the same 200 steps (loops in auto, manual and held,
  a gain change, a moving measurement) and must give the same outputs to
  1e-9; the benchmark stops if they do not.
- simple_pid: simple-pid 2.x, one PID object per loop (pure Python), with the
  features it has configured alike: the same gains, output limits (its
  anti-windup clamps the integral to them), derivative on measurement. It has
  no derivative filter, rate limit, feedforward, setpoint weights or
  back-calculation, so it does less work per step than the other two.
Every GreenEdge and numpy loop is full-featured: PI + filtered D on
measurement, limits, rate limit, feedforward, back-calculation. Times are the
best of several repeats.
"""

import time

import numpy as np
from simple_pid import PID

from bench.peers.numpy_pid import NumpyPid
from cython_ext import load

NS = (1, 100, 10000)
TUNING = dict(kp=1.2, ti=8.0, td=0.5, tf=0.05, b=1.0, c=0.0, tt=2.0, umin=0.0, umax=100.0,
              rate=50.0, dt=0.1)


def _best(fn, repeats, inner):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def _inputs(n):
    rng = np.random.default_rng(n)
    return rng.uniform(20, 80, n), rng.uniform(20, 80, n), rng.uniform(-1, 1, n)


def agreement(n=64, steps=200):
    """Max |u_bank - u_numpy| over the same steps; raises when they differ."""
    bank = load("pid").PidBank(n)
    bank.configure(**TUNING)
    pid = NumpyPid(n, **TUNING)
    sp, pv, ff = _inputs(n)
    rng = np.random.default_rng(7)
    worst = 0.0
    for k in range(steps):
        if k == 50:      # some loops to manual at their output, one held at a track value
            for side in (bank, pid):
                side.u_man[: n // 8] = 30.0
                side.mode[: n // 8] = 0
                side.held[-1] = 1
                side.u_track[-1] = 55.0
        if k == 120:     # back to auto (bumpless), a gain change on half the loops
            for side in (bank, pid):
                side.mode[:] = 1
                side.held[:] = 0
            bank.configure(idx=slice(0, n // 2), kp=2.0)
            pid.kp[: n // 2] = 2.0
            pid.configure()
        pv = pv + rng.normal(0, 0.5, n)
        bank.sp[:], bank.pv[:], bank.ff[:] = sp, pv, ff
        pid.sp[:], pid.pv[:], pid.ff[:] = sp, pv, ff
        bank.step()
        pid.step()
        worst = max(worst, float(np.max(np.abs(np.asarray(bank.u) - pid.u))))
    if not worst <= 1e-9:
        raise AssertionError("the numpy peer does not compute the bank's law: outputs differ "
                             "by %.3g" % worst)
    return worst


def bench_greenedge(n, quick):
    bank = load("pid").PidBank(n)
    bank.configure(**TUNING)
    sp, pv, ff = _inputs(n)
    bank.sp[:], bank.pv[:], bank.ff[:] = sp, pv, ff
    inner = max(10, 200000 // n) // (10 if quick else 1)
    return _best(bank.step, 5, inner) / n


def bench_numpy(n, quick):
    pid = NumpyPid(n, **TUNING)
    pid.sp[:], pid.pv[:], pid.ff[:] = _inputs(n)
    inner = max(10, 20000 // n) // (10 if quick else 1) or 1
    return _best(pid.step, 5, inner) / n


def bench_simple_pid(n, quick):
    sp, pv, _ = _inputs(n)
    pids = [PID(TUNING["kp"], TUNING["kp"] / TUNING["ti"], TUNING["kp"] * TUNING["td"],
                setpoint=float(s), sample_time=None, output_limits=(0.0, 100.0),
                differential_on_measurement=True) for s in sp]
    pvl = [float(x) for x in pv]
    dt = TUNING["dt"]

    def step():
        for p, x in zip(pids, pvl):
            p(x, dt=dt)

    inner = max(1, 2000 // n) // (10 if quick else 1) or 1
    return _best(step, 3 if n > 1000 else 5, inner) / n


def single_step_us():
    bank = load("pid").PidBank(1)
    bank.configure(**TUNING)
    bank.sp[0], bank.pv[0] = 50.0, 45.0
    return _best(bank.step, 5, 100000) * 1e6


def run(quick=False):
    out = {"ns_per_step": {"greenedge": {}, "numpy": {}, "simple_pid": {}},
           "numpy_max_abs_dev": agreement(), "tolerance": 1e-9}
    for n in NS:
        out["ns_per_step"]["greenedge"][str(n)] = round(bench_greenedge(n, quick) * 1e9, 2)
        out["ns_per_step"]["numpy"][str(n)] = round(bench_numpy(n, quick) * 1e9, 2)
        out["ns_per_step"]["simple_pid"][str(n)] = round(bench_simple_pid(n, quick) * 1e9, 2)
    out["single_step_us"] = round(single_step_us(), 3)
    g, nmp, sp = (out["ns_per_step"][k]["10000"] for k in ("greenedge", "numpy", "simple_pid"))
    out["ratio_numpy_vs_greenedge_10000"] = round(nmp / g, 1)
    out["ratio_simple_pid_vs_greenedge_10000"] = round(sp / g, 1)
    out["peers"] = {"numpy": np.__version__, "simple_pid": __import__("simple_pid").__version__
                    if hasattr(__import__("simple_pid"), "__version__") else "2.x"}
    return out


def report(r):
    lines = ["PID bank, ns per loop-step (full-featured loops)",
             "        N    greenedge        numpy   simple_pid"]
    for n in NS:
        k = str(n)
        lines.append("%9s %12.1f %12.1f %12.1f" % (k, r["ns_per_step"]["greenedge"][k],
                                                    r["ns_per_step"]["numpy"][k],
                                                    r["ns_per_step"]["simple_pid"][k]))
    lines.append("single-loop step from Python: %.3f us" % r["single_step_us"])
    lines.append("at N=10000: numpy %.1fx slower, simple-pid %.1fx slower than greenedge"
                 % (r["ratio_numpy_vs_greenedge_10000"], r["ratio_simple_pid_vs_greenedge_10000"]))
    return "\n".join(lines)
