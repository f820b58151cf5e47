"""plants: simulated seconds per wall second of each plant's physics, GreenEdge
(hil_tests/plants/, Cython steppers in cython_ext/plants.pyx) beside the same
equations, state for state, in pure Python with scipy solve_ivp (RK45, rtol
1e-6) over each 1 s interval (bench/peers/scipy_plants.py). Both sides run the
same first HOURS of the plant's standard scenario, 1 s steps, the fixed
actuator commands below, from the GreenEdge plant's t = 0 state.

What is timed: the physics step only, on both sides, fed the same inputs. The
scenario is read once, in step order, into lists (Replay: the noise processes
advance as in a live run); both sides index them. GreenEdge's step is the
plant's own step() on the replayed scenario (fan, pump, compressor: all of it
is physics) or, where step() also runs the instruments (scr, fgd), its Cython
stepper and its algebra (outlet conversions, FgdPlant._oxidation) on the same
inputs; the analyzers, CEMS and measure() are outside both timings. GreenEdge's
whole plant (step() + measure() on the live scenario, instruments included) is
timed over the same hours as a separate figure (plant_speedup), not a ratio.

Agreement: every 60 s of plant time both sides' states and outputs are
sampled; the deviation of a quantity is its largest relative difference over
the samples, |peer - GreenEdge| / max(|peer|, |GreenEdge|). The run raises
unless every quantity agrees within its plant's TOLERANCE, checked on the timed runs
themselves (the sampling is outside the timed blocks), so every figure
reported is of two runs shown to do the same work. The GreenEdge physics
samples must also equal the whole plant's (1e-12): the physics loop is the
plant. Tolerances (TOLERANCE): the peer's own RK45 error (rtol 1e-6) is far
below them but for the fan; the rest is GreenEdge's discretisation of its 1 s
steps, against which the peer integrates the continuous ODEs:
- fan, pump: GreenEdge solves the linear speed lag exactly, so only the
  peer's RK45 error remains: 1e-6.
- compressor: GreenEdge holds each machine's flow over a step at its
  end-of-step VSD speed (loaded from the first whole step above minimum
  flow); the peer integrates speed and pressure coupled. In the VSD's first
  seconds (tau 3 s) a fraction of a m3 of free air goes into the 13 m3 header
  one way or the other, well under 1e-3 of the pressure, then decays: 1e-3.
- scr: GreenEdge steps each coverage exactly with the gas frozen over the
  step: first order in the step (the deviation shrinks in proportion to the
  sub-step: tests/test_bench_plants.py), largest on the NH3 slip while the
  storage front reaches the last cell in the first ~15 minutes (slip rising
  tenfold), about 1.5e-2 there: 3e-2.
- fgd: explicit Euler over 1 s (inventory, solids) against time constants of
  hours: 1e-4.
"""

import time

from bench.peers import scipy_plants as peer
from hil_tests.plants import plant_class
from hil_tests.scenario import load_scenario

COMMANDS = {
    "fan": {"drive": {"run_cmd": 1, "speed_ref_pct": 75.0, "damper_cmd_pct": 100.0}},
    "pump": {"drive": {"run_cmd": 1, "speed_ref_pct": 80.0, "damper_cmd_pct": 100.0}},
    "compressor": {"c1": {"run_cmd": 1, "load_cmd": 1}, "c2": {"run_cmd": 1, "load_cmd": 1},
                   "vsd": {"run_cmd": 1, "load_cmd": 1, "speed_ref_pct": 60.0}},
    "scr": {"scr": {"dosing_enable": 1, "valve_cmd_pct": 40.0}},
    "fgd": {"fgd": {"pump1_run": 1, "pump2_run": 1, "pump3_run": 1, "pump4_run": 1,
                    "feeder_cmd_pct": 45.0, "blower_cmd_pct": 80.0}},
}
PLANTS = tuple(COMMANDS)
TOLERANCE = {"fan": 1e-6, "pump": 1e-6, "compressor": 1e-3, "scr": 3e-2, "fgd": 1e-4}
SAMPLE_S = 60
HOURS = {False: 3.0, True: 0.25}   # full form, --quick


class _Series:
    def __init__(self, v):
        self.v = v

    def __call__(self, t_s):
        return self.v[int(t_s)]


class Replay:
    """The scenario as a plant's step() reads it, read once in step order into
    lists: profile values at t = 0, 1, ... and the events active at each second."""

    def __init__(self, sc, n):
        self.profiles = {k: _Series([f(float(t)) for t in range(n)]) for k, f in sc.profiles.items()}
        self._on = {kind: [sc.active(kind, float(t)) for t in range(n + 1)]
                    for kind in {e.kind for e in sc.events}}

    def active(self, kind, t_s):
        on = self._on.get(kind)
        return on[int(t_s)] if on else []


def make_plant(plant, hours):
    cls = plant_class(plant)
    pl = cls(plant, load_scenario("%s_standard" % plant, cls.SPEC, hours=hours))
    for dev, pts in COMMANDS[plant].items():
        for k, v in pts.items():
            pl.actuate(dev, k, v)
    return pl


def _sum(events, field):
    return sum(e.fields[field] for e in events)


def ge_state(plant, pl):
    """The sampled quantities of a GreenEdge plant (the names of sides())."""
    if plant in ("fan", "pump"):
        return pl.n, pl.q, pl.elec_kw, pl.energy_kwh
    if plant == "compressor":
        return pl.header.p_bar, pl.state["vsd"]["speed"], pl.total_kw, pl.energy_kwh
    if plant == "scr":
        return tuple(pl.reactor.theta) + (pl.nox_out, pl.slip_ppm)
    return pl.inv.M_kmol, pl.s_kmol, pl.sul_kmol, pl.ph, pl.so2_out, pl.gypsum_purity


def sides(plant, n, params=None):
    """(names, GreenEdge (block, sample), peer (block, sample)) over n steps:
    block(k0, k1) advances steps k0..k1-1, sample() returns the names' values.
    params: parameters to change in the peer only (default: the plant's)."""
    pl = make_plant(plant, n / 3600)
    rp = Replay(pl.sc, n)
    p = dict(pl.p, **(params or {}))
    if plant in ("fan", "pump"):
        m = peer.FanPumpIvp(p, pl.cmd["drive"], pl.n, pl.eta_r, pl.drive)
        dem = rp.profiles["demand"].v
        names = ("speed", "flow_m3s", "power_kw", "energy_kwh")
        pe_s = lambda: (m.n, m.q, m.elec_kw, m.energy_kwh)

        def ge(k0, k1, step=pl.step):
            for k in range(k0, k1):
                step(float(k), 1.0)

        def pe(k0, k1, step=m.step):
            for k in range(k0, k1):
                step(1.0, dem[k])
    elif plant == "compressor":
        m = peer.CompressorIvp(p, pl.cmd, pl.header.p_bar)
        cap = pl.p["capacity_m3min"]
        frac = rp.profiles["demand_frac"].v
        dem = [frac[k] * cap + _sum(rp.active("surge", k), "flow_m3min") for k in range(n)]
        leak = [(pl.p["leak_frac"] + _sum(rp.active("leak_growth", k), "extra_frac")) * cap
                for k in range(n)]
        trip = [{int(e.fields["machine"]) for e in rp.active("trip", k)} for k in range(n)]
        names = ("pressure_bar", "vsd_speed", "power_kw", "energy_kwh")
        pe_s = lambda: (m.p_bar, m.speed, m.total_kw, m.energy_kwh)

        def ge(k0, k1, step=pl.step):
            for k in range(k0, k1):
                step(float(k), 1.0)

        def pe(k0, k1, step=m.step):
            for k in range(k0, k1):
                step(float(k), 1.0, dem[k], leak[k], trip[k])
    elif plant == "scr":
        from hil_tests.plants.scr import M_NH3, M_NO2, R
        m = peer.ScrIvp(p, pl.reactor.theta)
        c = pl.cmd["scr"]
        nh3_kgh = pl.p["nh3_max_kgh"] * min(max(c["valve_cmd_pct"], 0.0), 100.0) / 100.0 \
            if c["dosing_enable"] else 0.0
        F, T, cno, cnh3 = [], [], [], []
        for k in range(n):   # the reactor's inputs, as ScrPlant.step computes them
            if rp.active("maldistribution", k):
                raise ValueError("the peer has no maldistribution (split streams)")
            q, t_c, _ = pl.gas(rp.profiles["load_pct"].v[k])
            T.append(t_c + _sum(rp.active("temp_offset", k), "delta_c") + 273.15)
            nox = rp.profiles["nox_in_mg_nm3"].v[k] * (1 + _sum(rp.active("nox_step", k), "frac"))
            F.append(q / 3600.0 * T[k] / 273.15)
            cno.append(max(nox, 0.0) / 1000.0 / M_NO2 * 273.15 / T[k])
            cnh3.append(nh3_kgh / 3600.0 / (M_NH3 / 1000.0) / F[k])
        names = tuple("theta%d" % (j + 1) for j in range(len(m.theta))) + ("nox_out_mg_nm3", "slip_ppm")
        pe_s = lambda: tuple(m.theta) + (m.nox_out, m.slip_ppm)

        def block(step, out):
            def run(k0, k1):
                for k in range(k0, k1):
                    no, nh3 = step(1.0, F[k], T[k], cno[k], cnh3[k])
                    out.nox_out = no * M_NO2 * 1000.0 * T[k] / 273.15
                    out.slip_ppm = nh3 / (101325.0 / (R * T[k])) * 1e6
            return run
        ge, pe = block(pl.reactor.step, pl), block(m.step, m)
    elif plant == "fgd":
        from hil_tests.plants.fgd import M_SO2
        m = peer.FgdIvp(p, pl.inv.M_kmol, pl.s_kmol, pl.sul_kmol)
        c, P = pl.cmd["fgd"], pl.p
        feed = P["feeder_max_kmol_s"] * min(max(c["feeder_cmd_pct"], 0.0), 100.0) / 100
        air = P["blower_air_max_nm3h"] * min(max(c["blower_cmd_pct"], 0.0), 100.0) / 100
        so2_in, so2k, neq = [], [], []
        for k in range(n):   # the inventory's inputs, as FgdPlant.step computes them
            q = max(P["flow_full_nm3h"] * rp.profiles["load_pct"].v[k] / 100.0, 1.0)
            so2 = rp.profiles["so2_in_mg_nm3"].v[k] * (1 + _sum(rp.active("so2_step", k), "frac"))
            so2_in.append(max(so2, 0.0))
            so2k.append(so2_in[k] * 1e-6 * q / 3600.0 / M_SO2)
            tripped = {int(e.fields["pump"]) for e in rp.active("pump_trip", k)}
            running = sum(int(bool(c["pump%d_run" % i]) and i not in tripped and i <= P["pumps"])
                          for i in range(1, 6))
            neq.append(float(running) * P["flow_full_nm3h"] / q)
        names = ("inventory_kmol", "solids_s_kmol", "solids_sulfite_kmol", "ph", "so2_out_mg_nm3",
                 "gypsum_purity")
        pe_s = lambda: (m.M, m.s, m.sul, m.ph, m.so2_out, m.gypsum_purity)

        def ge(k0, k1, step=pl.inv.step, oxidation=pl._oxidation):
            for k in range(k0, k1):
                pl.ph, pl.eta = step(1.0, feed, so2k[k], neq[k])
                pl.so2_out = so2_in[k] * (1 - pl.eta)
                oxidation(1.0, c)

        def pe(k0, k1, step=m.step):
            for k in range(k0, k1):
                _, eta = step(1.0, feed, so2k[k], neq[k], air)
                m.so2_out = so2_in[k] * (1 - eta)
    else:
        raise ValueError("unknown plant %r" % plant)
    if plant in ("fan", "pump", "compressor"):
        pl.sc = rp   # step() reads the replayed scenario
    return names, (ge, lambda: ge_state(plant, pl)), (pe, pe_s)


def timed(block, sample, n):
    """Simulated s per wall s of block() over n steps, and a sample every SAMPLE_S
    steps (taken outside the timed blocks)."""
    out, wall = [], 0.0
    for k0 in range(0, n, SAMPLE_S):
        t0 = time.perf_counter()
        block(k0, min(k0 + SAMPLE_S, n))
        wall += time.perf_counter() - t0
        out.append(sample())
    return n / wall, out


def whole_plant(plant, n):
    """GreenEdge's whole plant on the live scenario, step() + measure() every 1 s:
    simulated s per wall s and its samples."""
    pl = make_plant(plant, n / 3600)

    def block(k0, k1, step=pl.step, measure=pl.measure):
        for k in range(k0, k1):
            step(float(k), 1.0)
            measure()
    return timed(block, lambda: ge_state(plant, pl), n)


def deviation(names, ge, pe):
    """{name: max over the samples of |peer - GreenEdge| / max(|peer|, |GreenEdge|)}."""
    return {name: max(abs(a[i] - b[i]) / (max(abs(a[i]), abs(b[i])) or 1.0) for a, b in zip(ge, pe))
            for i, name in enumerate(names)}


def compare(plant, n, params=None):
    """Both sides over n steps, timed: {"speedup", "peer_speedup", "deviation"
    {name: relative}, "max_rel_dev", "quantity", "samples" (GreenEdge's)}.
    Raises AssertionError unless every quantity agrees within TOLERANCE[plant]."""
    names, (ge, ge_s), (pe, pe_s) = sides(plant, n, params)
    ge_speed, ge_samples = timed(ge, ge_s, n)
    pe_speed, pe_samples = timed(pe, pe_s, n)
    dev = deviation(names, ge_samples, pe_samples)
    bad = {k: v for k, v in dev.items() if not v <= TOLERANCE[plant]}
    assert not bad, "%s: peer and GreenEdge trajectories differ (relative, tolerance %g): %s" % (
        plant, TOLERANCE[plant], ", ".join("%s %.3g" % kv for kv in sorted(bad.items())))
    worst = max(dev, key=dev.get)
    return {"speedup": ge_speed, "peer_speedup": pe_speed, "deviation": dev, "names": names,
            "max_rel_dev": dev[worst], "quantity": worst, "samples": ge_samples}


def run(quick=False):
    hours = HOURS[quick]
    n = int(hours * 3600)
    out = {"speedup": {}, "peer_speedup": {}, "ratio_vs_peer": {}, "plant_speedup": {},
           "day_wall_s": {}, "agreement": {}, "hours": hours, "sample_s": SAMPLE_S,
           "scenario": "the first %g h of each plant's standard scenario, 1 s steps, fixed commands"
                       % hours,
           "timed": "physics step on both sides, inputs precomputed (plant_speedup: GreenEdge's "
                    "whole plant, step() + measure() with instruments, on the live scenario)",
           "peer": "same equations in pure Python + scipy.integrate.solve_ivp (RK45, rtol %g) "
                   "per 1 s interval" % peer.RTOL}
    for p in PLANTS:
        c = compare(p, n)
        whole, whole_samples = whole_plant(p, n)
        off = deviation(c["names"], c["samples"], whole_samples)
        assert max(off.values()) <= 1e-12, "%s: the physics loop is not the plant's step(): %r" % (p, off)
        out["speedup"][p] = round(c["speedup"])
        out["peer_speedup"][p] = round(c["peer_speedup"])
        out["ratio_vs_peer"][p] = round(c["speedup"] / c["peer_speedup"], 1)
        out["plant_speedup"][p] = round(whole)
        out["day_wall_s"][p] = round(86400 / whole, 2)
        out["agreement"][p] = {"max_rel_dev": float("%.3g" % c["max_rel_dev"]), "quantity": c["quantity"],
                               "tolerance": TOLERANCE[p]}
    return out


def report(r):
    lines = ["plant physics: simulated s per wall s, both sides over the first %g h of the standard"
             " scenario (1 s steps)" % r["hours"],
             "  plant       greenedge  scipy peer    ratio  whole plant  24 h in   rel dev  (tol)"]
    for p in r["speedup"]:
        a = r["agreement"][p]
        lines.append("  %-10s %10d %11d %7.1fx %12d %6.2f s   %7.2g  (%g, worst: %s)" % (
            p, r["speedup"][p], r["peer_speedup"][p], r["ratio_vs_peer"][p], r["plant_speedup"][p],
            r["day_wall_s"][p], a["max_rel_dev"], a["tolerance"], a["quantity"]))
    lines.append("  whole plant: GreenEdge's step() + measure() with its instruments, not in the ratio;"
                 " rel dev: peer vs GreenEdge, sampled every %d s" % r["sample_s"])
    return "\n".join(lines)
