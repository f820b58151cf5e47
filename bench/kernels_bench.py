"""kernels: per loop-step cost of the PID bank beside two peers, same run.

- greenedge: cython_ext.pid.PidBank (fused nogil loop over struct-of-arrays).
- numpy: bench/peers/numpy_pid.py, the same law vectorised with numpy.
- simple_pid: simple-pid 2.x, one PID object per loop (pure Python), with its
  own features (limits, derivative on measurement) configured alike.
Every loop is full-featured: PI + filtered D on measurement, limits, rate limit,
feedforward, back-calculation. Times are the best of several repeats.
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
    out = {"ns_per_step": {"greenedge": {}, "numpy": {}, "simple_pid": {}}}
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
