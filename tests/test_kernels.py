"""Cython kernels against plain-Python references and analytic responses."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cython_ext
from cython_ext import load
from tests import kernel_ref as ref

pid = load("pid")
filters = load("filters")
deadtime = load("deadtime")
plants = load("plants")

REL = 1e-12


def close(a, b, scale=1.0):
    return abs(a - b) <= REL * max(abs(a), abs(b), scale)


finite = st.floats(-1e3, 1e3, allow_nan=False)
pos = st.floats(1e-3, 1e3)


@st.composite
def tunings(draw):
    lo = draw(st.floats(-100, 50))
    return dict(kp=draw(st.floats(-20, 20)), ti=draw(st.one_of(pos, st.just(math.inf))),
                td=draw(st.one_of(st.just(0.0), st.floats(0, 50))), tf=draw(pos),
                b=draw(st.floats(0, 1)), c=draw(st.floats(0, 1)),
                tt=draw(st.one_of(pos, st.just(math.inf))), umin=lo,
                umax=lo + draw(st.floats(0, 200)), rate=draw(st.one_of(pos, st.just(math.inf))),
                dt=draw(st.floats(1e-3, 10)))


@settings(max_examples=150, deadline=None)
@given(st.lists(tunings(), min_size=1, max_size=4), st.data())
def test_pid_bank_equals_reference(tuns, data):
    n = len(tuns)
    bank = pid.PidBank(n)
    for i, t in enumerate(tuns):
        bank.configure(i, **t)
    refs = [ref.PidRef(**t) for t in tuns]
    steps = data.draw(st.integers(1, 40))
    for _ in range(steps):
        for i, r in enumerate(refs):
            sp, pv, ff = data.draw(finite), data.draw(finite), data.draw(finite)
            bank.sp[i], bank.pv[i], bank.ff[i] = sp, pv, ff
            ev = data.draw(st.sampled_from(["", "", "", "manual", "auto", "held", "free",
                                            "kp", "umanual"]))
            if ev == "manual":
                bank.set_mode(i, False)
                r.auto = False
            elif ev == "auto":
                bank.set_mode(i, True)
                r.auto = True
            elif ev == "held":
                bank.held[i] = 1
                r.held = True
            elif ev == "free":
                bank.held[i] = 0
                r.held = False
            elif ev == "kp":
                k = data.draw(st.floats(-20, 20))
                bank.configure(i, kp=k)
                r.p["kp"] = k
            elif ev == "umanual":
                v = data.draw(finite)
                bank.u_man[i] = v
                r.u_man = v
            track = data.draw(finite)
            bank.u_track[i] = track
            r._track = track
        bank.step()
        for i, r in enumerate(refs):
            want = r.step(bank.sp[i], bank.pv[i], bank.ff[i], r._track)
            assert close(bank.u[i], want, 1e-6), (i, bank.u[i], want)
            assert close(bank.u_man[i], r.u_man, 1e-6)


def test_pid_gain_rewritten_to_zero_lets_the_derivative_decay():
    # Found by the property test above: with td > 0, kp rewritten to 0 used to
    # drop the D term at once (an output bump); it decays through its filter.
    t = dict(kp=1.0, ti=1.0, td=1.0, tf=1.0, b=0.0, c=0.0, tt=1.0, umin=0.0, umax=1.0,
             rate=1.0, dt=1.0)
    bank = pid.PidBank(1)
    bank.configure(0, **t)
    r = ref.PidRef(**t)
    for pv, kp in ((0.0, None), (-1.0, None), (0.0, 0.0), (0.0, None)):
        bank.pv[0] = pv
        if kp is not None:
            bank.configure(0, kp=kp)
            r.p["kp"] = kp
        bank.step()
        assert bank.u[0] == pytest.approx(r.step(0.0, pv), abs=1e-12)
    assert bank.u[0] == pytest.approx(0.625)


def test_pid_per_loop_sample_time_keeps_schedule():
    bank = pid.PidBank(2)
    bank.configure(dt=[0.1, 1.0], ti=5.0)
    count = np.zeros(2)
    t = 0.0
    for k in range(1001):
        t = k * 0.01
        before = bank.t_next.copy()
        bank.step(t)
        count += bank.t_next != before
    assert list(count) == [101, 11]  # t = 0, 0.1, ..., 10.0 and 0, 1, ..., 10


def test_bumpless_auto_manual_auto():
    bank = pid.PidBank(1)
    bank.configure(kp=2.0, ti=3.0, td=0.5, tf=0.05, umin=-100, umax=100, dt=0.1)
    bank.sp[0], bank.pv[0] = 10.0, 4.0
    for _ in range(20):
        bank.step()
    u_auto = bank.u[0]
    bank.set_mode(0, False)          # auto -> manual: u_man tracked the output
    bank.step()
    assert abs(bank.u[0] - u_auto) <= 1e-9
    bank.u_man[0] = 37.0             # operator moves the output
    for _ in range(5):
        bank.step()
    assert bank.u[0] == 37.0
    bank.set_mode(0, True)           # manual -> auto: integral tracked the manual output
    bank.step()
    assert abs(bank.u[0] - 37.0) <= 1e-9


def test_gain_schedule_change_is_bumpless():
    a, b = pid.PidBank(1), pid.PidBank(1)
    for bank in (a, b):
        bank.configure(kp=1.5, ti=4.0, dt=0.1)
        bank.sp[0], bank.pv[0] = 5.0, 2.0
        for _ in range(10):
            bank.step()
    a.configure(kp=6.0)              # scheduled gain jumps 4x between steps
    a.step()
    b.step()
    assert abs(a.u[0] - b.u[0]) <= 1e-9


def test_held_output_tracks_actuator_and_releases_without_bump():
    bank = pid.PidBank(1)
    bank.configure(kp=1.0, ti=2.0, dt=0.1)
    bank.sp[0], bank.pv[0] = 3.0, 1.0
    bank.step()
    bank.held[0] = 1
    bank.u_track[0] = 12.5           # interlock holds the valve at 12.5 %
    for _ in range(50):
        bank.step()
    assert bank.u[0] == 12.5         # no integration while held
    bank.held[0] = 0
    bank.step()
    assert abs(bank.u[0] - 12.5) <= 1e-9


def test_first_order_lag_step_is_exact():
    lag = filters.Lag(1, tau_s=2.0, dt_s=0.05)
    for k in range(1, 200):
        y = lag.step(np.ones(1))[0]
        assert abs(y - (1 - math.exp(-k * 0.05 / 2.0))) < 1e-12


def _closed_loop_fopdt(K, tau, theta, kc, ti, dt, t_end, smith=False, umax=math.inf,
                       tt=math.inf, sp_of_t=lambda t: 1.0):
    bank = pid.PidBank(1)
    bank.configure(kp=kc, ti=ti, dt=dt, umin=-umax, umax=umax, tt=tt)
    plant_lag = filters.Lag(1, tau, dt)
    delay = deadtime.DelayLine(1, theta + dt, dt)
    sm = deadtime.SmithPredictor(1, dt, theta + dt, k=K, tau_s=tau, theta_s=theta)
    ys, us = [], []
    y = 0.0
    u_prev = np.zeros(1)
    for k in range(int(round(t_end / dt))):
        t = k * dt
        pv = np.array([y])
        bank.pv[0] = sm.step(u_prev, pv)[0] if smith else y
        bank.sp[0] = sp_of_t(t)
        bank.step()
        u_prev = bank.u.copy()
        ys.append(y)
        us.append(bank.u[0])
        x = plant_lag.step(K * bank.u)   # plant: lag then transport delay
        y = delay.step(x, np.array([theta]))[0]
    return np.array(ys), np.array(us)


def test_fopdt_under_imc_pi_matches_analytic_first_order():
    # IMC-PI on K/(tau s + 1): kc = tau/(K lam), ti = tau -> closed loop 1/(lam s + 1).
    K, tau, lam, dt = 2.0, 30.0, 10.0, 0.01
    ys, _ = _closed_loop_fopdt(K, tau, 0.0, tau / (K * lam), tau, dt, 60.0)
    t = np.arange(len(ys)) * dt
    assert np.max(np.abs(ys - (1 - np.exp(-t / lam)))) < 2e-3


def test_smith_predictor_removes_dead_time_from_the_loop():
    # With a perfect model the loop answers like the delay-free one, shifted by theta.
    K, tau, theta, lam, dt = 1.5, 20.0, 15.0, 8.0, 0.01
    ys, _ = _closed_loop_fopdt(K, tau, theta, tau / (K * lam), tau, dt, 90.0, smith=True)
    t = np.arange(len(ys)) * dt
    want = np.where(t > theta, 1 - np.exp(-np.clip(t - theta, 0, None) / lam), 0.0)
    assert np.max(np.abs(ys - want)) < 3e-3


def test_windup_recovery_with_and_without_back_calculation():
    # Setpoint 1 for 100 s with the output limited to 0.6 (the process cannot get
    # there), then setpoint 0. Without anti-windup the integrator has wound up
    # and holds the output at its limit for a long time; back-calculation
    # releases it within a few tracking time constants.
    K, tau, dt = 1.0, 10.0, 0.01
    kc, ti = 1.0, 10.0

    def sp(t):
        return 1.0 if t < 100.0 else 0.0

    def release_time(tt):
        _, us = _closed_loop_fopdt(K, tau, 0.0, kc, ti, dt, 200.0, umax=0.6, tt=tt, sp_of_t=sp)
        t = np.arange(len(us)) * dt
        after = (t >= 100.0) & (us < 0.6 - 1e-9)
        return t[np.argmax(after)] - 100.0

    without = release_time(math.inf)
    with_aw = release_time(1.0)
    # Analytic, without anti-windup: I grows by kc/ti * e over 100 s with y -> 0.6,
    # so it takes ~ (I_end - 0.6 + kc*y) / (kc/ti * y) seconds to unwind.
    assert without > 30.0
    assert with_aw < 0.05
    assert without > 100 * with_aw


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=60), pos, st.floats(1e-3, 10), pos)
def test_signal_blocks_equal_reference(xs, tau, dt, lead):
    blocks = [
        (filters.Lag(1, tau, dt), ref.LagRef(tau, dt)),
        (filters.LeadLag(1, lead, tau, dt), ref.LeadLagRef(lead, tau, dt)),
        (filters.RateLimiter(1, tau, dt), ref.RateLimiterRef(tau, dt)),
        (filters.MovingAverage(1, 7), ref.MovingAverageRef(7)),
        (filters.Median3(1), ref.Median3Ref()),
        (filters.Hysteresis(1, 10.0, -10.0), ref.HysteresisRef(10.0, -10.0)),
    ]
    for x in xs:
        for k, r in blocks:
            got = float(k.step(np.array([x]))[0])
            want = r.step(x)
            assert close(got, want, 1e-6 * max(1.0, abs(x))), (type(k).__name__, got, want)


def test_moving_average_does_not_drift():
    ma = filters.MovingAverage(1, 10)
    rng = np.random.default_rng(1)
    for _ in range(100_000):
        ma.step(rng.normal(1e6, 1.0, 1))
    x = np.full(1, 3.0)
    for _ in range(10):
        y = ma.step(x)
    assert y[0] == 3.0


def test_hourly_means_are_clock_aligned_and_exact():
    hm = filters.HourlyMean(2)
    # 1 s samples from 00:59:00 to 02:00:30; channel 1 invalid during 01:10-01:20.
    for k in range(3540, 7230):
        valid = [True, not (4200 <= k < 4800)]
        hm.add(k, k + 1, np.array([1.0 if k < 3600 else 2.0, float(k)]), valid)
    starts = [c[0] for c in hm.closed]
    assert starts == [0.0, 3600.0]
    assert hm.closed[0][1][0] == 1.0 and hm.closed[0][2][0] == pytest.approx(60 / 3600)
    assert hm.closed[1][1][0] == 2.0 and hm.closed[1][2][0] == 1.0
    valid_k = [k for k in range(3600, 7200) if not 4200 <= k < 4800]
    assert hm.closed[1][1][1] == pytest.approx(np.mean(valid_k), rel=1e-12)
    assert hm.closed[1][2][1] == pytest.approx(3000 / 3600)
    start, means, valid = hm.current()
    assert start == 7200.0 and means[0] == 2.0 and valid[0] == 30.0


def test_rolling_mean_window():
    rm = filters.RollingMean(1, 3600.0, 60.0)
    for k in range(120):
        y = rm.step(np.array([float(k)]))
    assert y[0] == pytest.approx(np.mean(np.arange(60, 120)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, st.floats(0, 5)), min_size=1, max_size=80), st.floats(0.01, 2))
def test_delay_line_equals_reference(seq, dt):
    line = deadtime.DelayLine(1, 5.0, dt)
    r = ref.DelayLineRef(5.0, dt)
    for x, d in seq:
        got = line.step(np.array([x]), np.array([d]))[0]
        assert close(got, r.step(x, d), 1e-6)


def test_delay_line_exact_integer_delay():
    line = deadtime.DelayLine(2, 10.0, 1.0)
    out = [line.step(np.array([k, -k], dtype=float), np.array([3.0, 0.0])).copy() for k in range(10)]
    assert [o[0] for o in out[3:]] == [k - 3 for k in range(3, 10)]
    assert [o[1] for o in out] == [-k for k in range(10)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=50), st.floats(0.5, 5),
       st.floats(1, 50), st.floats(0, 20))
def test_smith_equals_reference(seq, k, tau, theta):
    sm = deadtime.SmithPredictor(1, 0.5, 25.0, k=k, tau_s=tau, theta_s=theta)
    r = ref.SmithRef(0.5, 25.0, k, tau, theta)
    for u, pv in seq:
        got = sm.step(np.array([u]), np.array([pv]))[0]
        assert close(got, r.step(u, pv), 1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 60), st.floats(300, 2000), st.floats(560, 700),
                          st.floats(0, 5e-3), st.floats(0, 6e-3)), min_size=1, max_size=20))
def test_scr_stepper_equals_reference(seq):
    k, r = plants.ScrReactor(), ref.ScrRef()
    for dt, F, T, cno, cnh3 in seq:
        got = k.step(dt, F, T, cno, cnh3)
        want = r.step(dt, F, T, cno, cnh3)
        assert close(got[0], want[0], 1e-9) and close(got[1], want[1], 1e-9)
        for a, b in zip(k.theta, r.theta):
            assert close(a, b, 1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 600), st.floats(0, 0.05), st.floats(0, 0.05),
                          st.integers(0, 5)), min_size=1, max_size=20))
def test_fgd_stepper_equals_reference(seq):
    k, r = plants.FgdInventory(), ref.FgdRef()
    for dt, feed, so2, n in seq:
        ph, eta = k.step(dt, feed, so2, n)
        want = r.step(dt, feed, so2, n)
        assert close(ph, want[0]) and close(eta, want[1])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 60), st.floats(0, 1), st.floats(0, 1), st.floats(0, 0.3)),
                min_size=1, max_size=30))
def test_air_header_equals_reference(seq):
    k, r = plants.AirHeader(), ref.AirRef()
    for dt, qi, qp, ql in seq:
        assert close(k.step(dt, qi, qp, ql, 8.01325), r.step(dt, qi, qp, ql, 8.01325))


def test_fgd_pump_ph_table():
    # docs/models.md section 4: pH 5.5, inlet 2000 mg/Nm3: 3 pumps -> 48.5, 4 -> 24, 5 -> 13 mg/Nm3.
    inv = plants.FgdInventory()
    for n, out in ((3, 48.5), (4, 24), (5, 13)):
        _, eta = inv.step(0.0, 0.0, 0.0, n)
        assert 2000 * (1 - eta) == pytest.approx(out, rel=0.05)


@pytest.mark.parametrize("call, msg", [
    (lambda: pid.PidBank(2).configure(kp=[1.0, float("nan")]), r"kp\[1\] = nan: must be finite"),
    (lambda: pid.PidBank(1).configure(dt=-0.1), r"dt\[0\] = -0.1: must be > 0"),
    (lambda: pid.PidBank(1).configure(ti=0.0), r"ti\[0\] = 0.0: must be > 0"),
    (lambda: pid.PidBank(1).configure(umin=5, umax=1), r"umin\[0\] = 5.0 > umax\[0\] = 1.0"),
    (lambda: pid.PidBank(3).configure(kp=[1.0, 2.0]), r"kp: cannot set loops"),
    (lambda: pid.PidBank(1).configure(gain=1), r"unknown PID parameter 'gain'"),
    (lambda: pid.PidBank(0), r"at least one loop"),
    (lambda: filters.Lag(3, 1.0, 0.1).step(np.zeros(2)), r"x: shape \(2,\), expected \(3,\)"),
    (lambda: filters.Lag(2, 1.0, 0.1).step(np.zeros(2, dtype=np.float32)), r"x: dtype float32"),
    (lambda: filters.Lag(1, 1.0, -0.1), r"dt_s = -0.1"),
    (lambda: deadtime.DelayLine(1, 5.0, 1.0).step(np.zeros(1), np.array([6.0])), r"outside 0..5.0"),
    (lambda: plants.ScrReactor(V_m3=-1), r"V_m3 = -1"),
])
def test_bad_input_gets_a_clear_error(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


def test_pid_tunings_cannot_be_bypassed():
    bank = pid.PidBank(1)
    with pytest.raises(ValueError):
        bank.param("kp")[0] = float("nan")


def test_bad_configure_changes_nothing():
    bank = pid.PidBank(2)
    bank.configure(kp=3.0)
    with pytest.raises(ValueError):
        bank.configure(kp=5.0, dt=[0.1, -1.0])
    assert list(bank.param("kp")) == [3.0, 3.0]


def test_unbuilt_kernel_import_says_how_to_build(monkeypatch):
    import importlib

    def fail(name):
        raise ImportError("No module named %r" % name)

    monkeypatch.setattr(importlib, "import_module", fail)
    with pytest.raises(ImportError, match="pip install -e"):
        cython_ext.load("pid")
