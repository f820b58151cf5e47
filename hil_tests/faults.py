"""`greenedge faults`: the fault campaign of issue 14 (docs/safety.md, "Fault campaign").

Signal faults, model-in-the-loop (hil_tests/sim.py): every measured point of
every plant (its SPEC["signals"], names from the register map) through every
signal_fault mode (hil_tests/plants/instruments.py), on a MIL_HOURS slice of
the plant's standard day with the fault from AT_H for DUR_H; a point several
devices measure (the compressors' header pressure) also fails on all of them
at once. Each plant first runs the slice fault-free: its peak NH3 dose and the
means its points read during the fault window (for the `value` mode) come from
that run, and it must pass the same invariants.

Device faults on the HIL bench (hil_tests/bench.py, real firmware, real
service, as hil_tests/tests/test_chain.py does them): a garbage stream on the
line for 10 s, a device's power cycle, a device at a swapped unit id (another
profile answering at the SCR's address), a device answering exceptions (its
settings locked: 04 to every settings write), the host killed with SIGKILL.

Invariants (the figures are the documented ones, not the campaign's):
  - no NH3 dose above the molar-ratio cap (NH3 mol / inlet NOx mol, ANR_CAP:
    the SCR profile's register for it if the map has one, else 1.2) nor above
    1.1 x the fault-free run's peak;
  - no compressor loaded while no transmitter gives a valid header pressure
    (finite, inside the host's plausibility range, controller/loops/compressor.py
    P_RANGE_BAR) for longer than the strategy's documented hold (BLIND_S, 30 s)
    plus the strategy's period (its next run after the hold);
  - no command that is not a finite number;
  - no process crash (a strategy exception is a crash); a numeric warning in a
    strategy (a division by zero) is a finding too;
  - on the bench: every device safe within its comm-loss timeout of its host
    dying (or of the line going to garbage), no output change before arm after
    power-up, a refused or swapped device never armed, no stop refused (a
    device in its safe state has its run outputs off), no committed historian
    row lost, the service alive.
--json prints {faults_run, unsafe, data_lost, crashes, findings: [...]}; the
exit status is 1 on any finding.
"""

import json
import math
import os
import tempfile
import time
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from controller.errors import UserError
from controller.loops.base import good
from controller.loops.compressor import BLIND_S, P_RANGE_BAR
from controller.registers import point_map
from hil_tests.plants import plant_class
from hil_tests.plants.instruments import MODES, span
from hil_tests.plants.scr import M_NH3, M_NO2
from hil_tests.scenario import SCENARIO_DIR

PLANTS = ("fan", "pump", "compressor", "scr", "fgd")
MIL_HOURS, AT_H, DUR_H = 3.0, 1.0, 1.0
NH3_PEAK_FACTOR = 1.1
DEFAULT_ANR_CAP = 1.2
DRIFT_SPAN_PER_H = 0.10   # `drift`: 10 % of the span per hour (10 % off after the hour)
NOISE_SPAN = 0.02         # `noise`: a standard deviation of 2 % of the span
# The short (CI) campaign: these points through every mode.
SHORT = {"fan": [("drive", "process_pv")], "pump": [("drive", "process_sp")],
         "compressor": [(None, "discharge_pressure_bar")],
         "scr": [("scr", "o2_pct"), ("scr", "nox_in_mg_nm3")],
         "fgd": [("fgd", "so2_in_mg_nm3")]}


def anr_cap():
    """The molar-ratio cap: the SCR profile's register for it, else 1.2."""
    for p in point_map("scr").values():
        n = p.name.lower()
        if p.default is not None and ("ratio" in n or "anr" in n or "nsr" in n):
            return float(p.default)
    return DEFAULT_ANR_CAP


class Watch:
    """The invariants over one model-in-the-loop run (sim.run's observe)."""

    def __init__(self, plant, period_s, nh3_peak=None, cap=None, window=None):
        self.plant = plant
        self.nh3_peak = nh3_peak
        self.cap = cap if cap is not None else anr_cap()
        self.blind_limit_s = BLIND_S + period_s
        self.window = window      # (t0, t1) s: collect the points' means there
        self.sums = {}
        self.n = 0
        self.peak_nh3 = 0.0
        self.unsafe = {}          # invariant -> {first_t_h, worst, s}
        self.blind_s = 0.0
        self.t_prev = None

    def flag(self, what, t, worst, dt):
        u = self.unsafe.setdefault(what, {"first_t_h": round(t / 3600, 4), "worst": worst, "s": 0.0})
        u["worst"] = max(u["worst"], worst)
        u["s"] += dt

    def __call__(self, t, pl, meas, cmds):
        dt = pl.sc.step_s
        for dev, pts in cmds.items():
            for k, v in pts.items():
                if not good(v):
                    self.flag("command %s.%s not a number" % (dev, k), t, 1.0, dt)
        if self.window and meas is not None and self.window[0] <= t < self.window[1]:
            self.n += 1
            for dev, pts in meas.items():
                for k, v in pts.items():
                    if good(v):
                        self.sums[(dev, k)] = self.sums.get((dev, k), 0.0) + float(v)
        if self.plant == "scr":
            self.peak_nh3 = max(self.peak_nh3, pl.nh3_kgh)
            if pl.nh3_kgh > 0:
                nox_mol = pl.nox_in * pl.q_nm3h * 1e-3 / M_NO2
                ratio = (pl.nh3_kgh * 1e3 / M_NH3) / nox_mol if nox_mol > 0 else math.inf
                if ratio > self.cap:
                    self.flag("NH3 above the molar-ratio cap %g" % self.cap, t, ratio, dt)
                if self.nh3_peak is not None and pl.nh3_kgh > NH3_PEAK_FACTOR * self.nh3_peak:
                    self.flag("NH3 above 1.1 x the fault-free peak (%.1f kg/h)" % self.nh3_peak,
                              t, pl.nh3_kgh, dt)
        if self.plant == "compressor" and meas is not None:
            lo, hi = P_RANGE_BAR
            valid = any(good(meas[d].get("discharge_pressure_bar"))
                        and lo <= meas[d]["discharge_pressure_bar"] <= hi
                        for d in pl.NAMES)
            loaded = [n for n in pl.NAMES if pl.state[n]["loaded"]]
            self.blind_s = self.blind_s + dt if loaded and not valid else 0.0
            if self.blind_s > self.blind_limit_s:
                self.flag("compressor loaded without a valid pressure reading > %g s"
                          % self.blind_limit_s, t, self.blind_s, dt)

    def means(self):
        return {k: v / self.n for k, v in self.sums.items()} if self.n else {}


def fault_value(plant, dev, sig, mode, means):
    """The `value` of a case: o2 at 21 % (the correction's pole, issue 14); else
    1.5 x what the point read in the fault window of the fault-free run (half
    the span if it read 0); drift and noise as fractions of the span."""
    cls = plant_class(plant)
    d0 = dev or next(iter(cls.SPEC["signals"]))
    lo, hi = span(cls.DEVICES[d0], sig)
    if mode == "drift":
        return DRIFT_SPAN_PER_H * (hi - lo)
    if mode == "noise":
        return NOISE_SPAN * (hi - lo)
    if mode != "value":
        return None
    if sig == "o2_pct":
        return 21.0
    alias = cls.ALIASES.get((d0, sig))
    m = means.get(alias if alias else (d0, sig), 0.0)
    return min(1.5 * m, hi) if m > 0 else lo + 0.5 * (hi - lo)


def cases(plant, means, short=False):
    """[(device or None for all, signal, mode, value)] of a plant's campaign."""
    sigs = plant_class(plant).SPEC["signals"]
    pts = []
    if short:
        pts = SHORT[plant]
    else:
        for dev, names in sigs.items():
            pts += [(dev, s) for s in names]
        if len(sigs) > 1:  # a point every device measures: all at once too
            common = set.intersection(*(set(v) for v in sigs.values()))
            pts += [(None, s) for s in sorted(common)]
    return [(dev, sig, mode, fault_value(plant, dev, sig, mode, means))
            for dev, sig in pts for mode in MODES]


def scenario_text(plant, case=None):
    """The plant's standard scenario with the case's signal_fault event."""
    text = (SCENARIO_DIR / ("%s_standard.toml" % plant)).read_text()
    if case is None:
        return text
    dev, sig, mode, value = case
    ev = ["", "[[events]]", 'kind = "signal_fault"', 'signal = "%s"' % sig, 'mode = "%s"' % mode,
          "at_h = %r" % AT_H, "duration_h = %r" % DUR_H]
    if dev is not None:
        ev.append('device = "%s"' % dev)
    if value is not None:
        ev.append("value = %r" % float(value))
    return text.rstrip("\n") + "\n" + "\n".join(ev) + "\n"


def label(plant, case):
    if case is None:
        return "%s fault-free" % plant
    dev, sig, mode, value = case
    where = ("%s.%s" % (dev, sig)) if dev and len(plant_class(plant).DEVICES) > 1 else \
        ("%s (every device)" % sig if dev is None and len(plant_class(plant).DEVICES) > 1 else sig)
    return "%s %s %s%s" % (plant, where, mode, "" if value is None else " %g" % value)


def case_key(plant, case):
    """"plant device|* signal mode" (None: "plant fault-free"), value left out."""
    if case is None:
        return "%s fault-free" % plant
    return "%s %s %s %s" % (plant, case[0] or "*", case[1], case[2])


def run_case(plant, strategy, case, nh3_peak, seed=None):
    """One model-in-the-loop run; returns its result record."""
    from controller.loops import strategy_class
    from hil_tests import sim
    rec = {"fault": label(plant, case), "plant": plant, "bench": "mil", "unsafe": {},
           "crash": None, "warnings": [], "key": case_key(plant, case)}
    period = strategy_class(plant, strategy).period_s
    w = Watch(plant, period, nh3_peak, window=(AT_H * 3600, (AT_H + DUR_H) * 3600))
    with tempfile.TemporaryDirectory(prefix="greenedge-faults-") as d:
        path = Path(d) / ("%s_fault.toml" % plant)
        path.write_text(scenario_text(plant, case))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                sim.run(plant, strategy, str(path), MIL_HOURS, seed, observe=w)
            except Exception as e:  # a crash is a result here
                tb = traceback.extract_tb(e.__traceback__)[-1]
                rec["crash"] = "%s: %s (%s:%d)" % (type(e).__name__, e,
                                                   os.path.relpath(tb.filename), tb.lineno)
        for c in caught:
            if issubclass(c.category, RuntimeWarning):
                rec["warnings"].append("%s (%s:%d)" % (c.message, os.path.relpath(c.filename),
                                                       c.lineno))
    rec["warnings"] = sorted(set(rec["warnings"]))
    rec["unsafe"] = w.unsafe
    rec["peak_nh3_kgh"] = round(w.peak_nh3, 3) if plant == "scr" else None
    rec["_means"] = w.means()
    return rec


def _finding(rec):
    out = []
    for what, u in rec["unsafe"].items():
        out.append({"fault": rec["fault"], "kind": "unsafe", "what": what,
                    "first_t_h": u["first_t_h"], "seconds": round(u["s"], 1),
                    "worst": round(u["worst"], 3)})
    if rec["crash"]:
        out.append({"fault": rec["fault"], "kind": "crash", "what": rec["crash"]})
    for wn in rec["warnings"]:
        out.append({"fault": rec["fault"], "kind": "warning", "what": wn})
    for d in rec.get("data_lost", []):
        out.append({"fault": rec["fault"], "kind": "data_lost", "what": d})
    return out


def mil_campaign(plants, strategy="optimized", short=False, jobs=None, seed=None):
    """Every plant's fault-free slice, then every case; returns the records."""
    jobs = jobs or min(2, os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        refs = dict(zip(plants, ex.map(run_case, plants, [strategy] * len(plants),
                                       [None] * len(plants), [None] * len(plants),
                                       [seed] * len(plants))))
        jobs_list = []
        for p in plants:
            for c in cases(p, refs[p]["_means"], short):
                jobs_list.append((p, c))
        recs = list(ex.map(run_case, [p for p, _ in jobs_list], [strategy] * len(jobs_list),
                           [c for _, c in jobs_list],
                           [refs[p]["peak_nh3_kgh"] for p, _ in jobs_list],
                           [seed] * len(jobs_list), chunksize=4))
    for r in list(refs.values()) + recs:
        r.pop("_means", None)
    return list(refs.values()), recs


# ---- device faults on the HIL bench ---------------------------------------------------------
BENCH_PLANTS = ("fan", "scr")   # one line (rtu1): a drive and the NH3 valve
BENCH_SPEEDUP = 60.0
COMM_LOSS_S = 3.0
LINK_SLACK_S = 1.0   # the plant link's view of a device: 20 ms exchanges, a loaded machine
                     # (hil_tests/tests/test_chain.py allows the same)
REARM_WALL_S = 60.0  # a healthy device back on the line is armed again within this
SCR_BOOT = {"valve_cmd_pct": 0.0, "dosing_enable": 0}  # the SCR's safe values (profile defaults)


def _status(link):
    return link.last[2] if link.last is not None else 0


def _armed(link):
    from firmware import regmap
    return bool(_status(link) & regmap.ST_ARMED)


def _safe(link):
    from firmware import regmap
    return bool(_status(link) & regmap.ST_SAFE_STATE)


class _Bench:
    """The bench and the helpers the device faults share."""

    def __init__(self, workdir):
        from hil_tests.bench import Bench
        self.b = Bench(list(BENCH_PLANTS), speedup=BENCH_SPEEDUP, hours=24.0, workdir=workdir,
                       comm_loss_s=COMM_LOSS_S)

    def wait(self, cond, wall_s, check_service=True):
        """Advance the plant until cond() or wall_s; returns the wall time it took or None."""
        b, t0 = self.b, time.monotonic()
        while time.monotonic() - t0 < wall_s:
            if cond():
                return time.monotonic() - t0
            b.advance(b.t_plant + 0.05 * b.speedup, check_service=check_service)
        return time.monotonic() - t0 if cond() else None

    def safe_values_ok(self, dev):
        """In its safe state, a device drives its safe values (no stop refused)."""
        link = self.b.links[dev]
        if link.last is None:
            return False
        cmds = link.last[0]
        if dev == "scr":
            return all(abs(cmds[k] - v) < 1e-6 for k, v in SCR_BOOT.items())
        want = self.b.duty_safe_state("fan", "drive")
        return (cmds["run_cmd"] == want.get("run_safe", 0)
                and abs(cmds["speed_ref_pct"] - want.get("speed_safe_pct", 50.0)) < 0.02)

    def member(self, dev):
        for bus, members in self.b.buses().items():
            for k, (plant, role, d, unit) in enumerate(members):
                if d == dev:
                    return bus, k, unit
        raise KeyError(dev)

    def restart(self, dev, profile="scr", extra=()):
        """Power the device off and on again (a new process on the same line
        port and plant link port), optionally as another profile or with
        other options."""
        from hil_tests.devices import DeviceProcess
        from hil_tests.plantlink import DeviceLink
        b = self.b
        bus, k, unit = self.member(dev)
        b.devices[dev].stop()
        port = b.links[dev].addr[1]
        b.links[dev].close()
        b.devices[dev] = DeviceProcess(profile, unit, b.lines[bus].ports[k + 1], b.baud,
                                       extra=["--link", str(port), "--comm-loss-s",
                                              str(b.comm_loss_s)] + list(extra))
        b.links[dev] = DeviceLink(profile, udp_port=port)

    def rows(self):
        import sqlite3
        con = sqlite3.connect(str(self.b.dir / "history.db"), timeout=10)
        try:
            n, top = con.execute("SELECT COUNT(*), MAX(rowid) FROM samples").fetchone()
        finally:
            con.close()
        return n, top or 0

    def rows_upto(self, top):
        import sqlite3
        con = sqlite3.connect(str(self.b.dir / "history.db"), timeout=10)
        try:
            ok = con.execute("PRAGMA integrity_check").fetchone()[0]
            n = con.execute("SELECT COUNT(*) FROM samples WHERE rowid <= ?", (top,)).fetchone()[0]
        finally:
            con.close()
        return ok, n


def _rec(name):
    return {"fault": name, "plant": "bench", "bench": "hil", "unsafe": {}, "crash": None,
            "warnings": [], "data_lost": []}


def _unsafe(rec, what, worst=1.0):
    rec["unsafe"][what] = {"first_t_h": 0.0, "worst": worst, "s": 0.0}


def _garbage(h):
    """10 s of garbage on the line (every byte the master sends corrupted)."""
    rec, b = _rec("bench garbage stream 10 s on rtu1"), h.b
    b.lines["rtu1"].set(corrupt_rate=1.0)
    t0 = time.monotonic()
    took = {d: None for d in BENCH_PLANTS}
    while time.monotonic() - t0 < 10.0:
        for d in BENCH_PLANTS:
            if took[d] is None and _safe(b.links[d]):
                took[d] = time.monotonic() - t0
        b.advance(b.t_plant + 0.05 * b.speedup)
    for d in BENCH_PLANTS:  # by now every output has ramped to its safe value
        if _safe(b.links[d]) and not h.safe_values_ok(d):
            _unsafe(rec, "%s in its safe state without its safe values (a stop refused): %s"
                    % (d, b.links[d].last[0]))
    b.lines["rtu1"].set(corrupt_rate=0.0)
    for d, s in took.items():
        if s is None or s > COMM_LOSS_S + LINK_SLACK_S:
            _unsafe(rec, "%s not safe within its comm-loss timeout of the garbage" % d,
                    s if s is not None else 10.0)
    if h.wait(lambda: all(_armed(b.links[d]) for d in BENCH_PLANTS), REARM_WALL_S) is None:
        _unsafe(rec, "not re-armed after the garbage stopped")
    return rec


def _power_cycle(h):
    """The SCR device loses power and boots again: nothing moves before arm."""
    rec, b = _rec("bench power cycle of the scr device"), h.b
    h.restart("scr")
    changed = []

    def watch():
        link = b.links["scr"]
        if link.last is not None and not _armed(link):
            if any(abs(link.last[0][k] - v) > 1e-6 for k, v in SCR_BOOT.items()):
                changed.append(dict(link.last[0]))
        return _armed(link)
    if h.wait(watch, REARM_WALL_S) is None:
        _unsafe(rec, "scr not re-armed after its power cycle")
    if changed:
        _unsafe(rec, "scr output changed before arm after power-up: %s" % changed[0])
    return rec


def _never_armed(h, rec, dev, wall_s):
    b = h.b

    def watch():
        link = b.links[dev]
        if _armed(link):
            _unsafe(rec, "%s armed" % dev)
        elif link.last is not None and dev == "scr" and link.profile == "scr" and any(
                abs(link.last[0][k] - v) > 1e-6 for k, v in SCR_BOOT.items()):
            _unsafe(rec, "%s output changed while not armed" % dev)
        return False
    h.wait(watch, wall_s)


def _swapped(h):
    """Another profile (a motor device) answers at the SCR's unit id, the
    moment the SCR device is gone (a reboot's time: the host never sees the
    unit down)."""
    rec, b = _rec("bench swapped unit id (a motor device at the scr's address at once)"), h.b
    h.restart("scr", profile="motor")
    _never_armed(h, rec, "scr", 8.0)
    st = b.service_status() or {}
    h.restart("scr")
    if h.wait(lambda: _armed(b.links["scr"]), REARM_WALL_S) is None:
        _unsafe(rec, "scr not armed once the right device is back")
    rec["service_saw"] = (st.get("devices") or {}).get("scr")
    return rec


def _swapped_after_down(h):
    """The SCR device goes off the line until the host marks it down, then a
    motor device answers at its unit id."""
    rec, b = _rec("bench swapped unit id (a motor device at the scr's address after it was "
                  "down)"), h.b
    b.devices["scr"].stop()
    gone = lambda: not ((b.service_status() or {}).get("devices") or {}).get("scr", {}).get("up", True)
    if h.wait(gone, 30.0) is None:
        _unsafe(rec, "the service never marked the silent scr device down")
    h.restart("scr", profile="motor")
    _never_armed(h, rec, "scr", 8.0)
    h.restart("scr")
    if h.wait(lambda: _armed(b.links["scr"]), REARM_WALL_S) is None:
        _unsafe(rec, "scr not armed once the right device is back")
    return rec


# An unlock sequence the host does not hold (its default is the map's).
FOREIGN_KEY = "0x1357,0x2468"


def _exceptions(h):
    """The SCR device boots with its settings locked by a key the host does
    not hold: 03 to the host's unlock words, 04 to every settings write (a
    key-locked device whose key the host holds is unlocked and armed: that is
    the settings lock working, not a fault)."""
    rec, b = _rec("bench device answering exceptions (scr settings locked, foreign key: 03/04)"), h.b
    h.restart("scr", extra=["--settings-locked", "1", "--settings-key", FOREIGN_KEY])
    _never_armed(h, rec, "scr", 8.0)
    h.restart("scr")
    if h.wait(lambda: _armed(b.links["scr"]), REARM_WALL_S) is None:
        _unsafe(rec, "scr not armed once its settings are open")
    return rec


def _host_kill(h):
    """kill -9 of the service: every device safe within its timeout, no
    committed historian row lost, the restarted service re-arms."""
    rec, b = _rec("bench host kill -9"), h.b
    n0, top = h.rows()
    b.kill_service()
    t0 = time.monotonic()
    took = {}
    while time.monotonic() - t0 < COMM_LOSS_S + 5:
        for d in BENCH_PLANTS:
            if d not in took and _safe(b.links[d]):
                took[d] = time.monotonic() - t0
        b.advance(b.t_plant + 0.05 * b.speedup, check_service=False)
    for d in BENCH_PLANTS:  # 5 s after the timeout: every output has ramped to its safe value
        if _safe(b.links[d]) and not h.safe_values_ok(d):
            _unsafe(rec, "%s in its safe state without its safe values (a stop refused): %s"
                    % (d, b.links[d].last[0]))
    for d in BENCH_PLANTS:
        s = took.get(d)
        if s is None or s > COMM_LOSS_S + LINK_SLACK_S:
            _unsafe(rec, "%s not safe within its comm-loss timeout of the host dying" % d,
                    s if s is not None else COMM_LOSS_S + 5)
    ok, n1 = h.rows_upto(top)
    if ok != "ok" or n1 < n0:
        rec["data_lost"].append("historian: %d of %d committed rows left, integrity %s"
                                % (n1, n0, ok))
    b.start_service()
    if h.wait(lambda: all(_armed(b.links[d]) for d in BENCH_PLANTS), REARM_WALL_S) is None:
        _unsafe(rec, "not re-armed after the service restarted")
    ok, n2 = h.rows_upto(top)
    if ok != "ok" or n2 < n0:
        rec["data_lost"].append("historian after restart: %d of %d rows, integrity %s"
                                % (n2, n0, ok))
    return rec


DEVICE_FAULTS = (_garbage, _power_cycle, _swapped_after_down, _swapped, _exceptions, _host_kill)
SHORT_DEVICE_FAULTS = (_power_cycle, _host_kill)


def device_campaign(short=False):
    """The device faults, one after the other on one bench; a fault the bench
    cannot even run is a crash record (the service's log tail included)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="greenedge-faults-hil-") as d:
        h = _Bench(d)
        try:
            h.b.start()
            h.b.begin()
            if h.wait(lambda: all(_armed(h.b.links[x]) for x in BENCH_PLANTS), REARM_WALL_S) \
                    is None:
                rec = _rec("bench start")
                _unsafe(rec, "devices not armed after start")
                return [rec]
            for fn in (SHORT_DEVICE_FAULTS if short else DEVICE_FAULTS):
                try:
                    rec = fn(h)
                except Exception as e:
                    rec = _rec("bench " + fn.__name__.strip("_"))
                    rec["crash"] = "%s: %s" % (type(e).__name__, str(e)[:500])
                if h.b.service.poll() is not None:
                    rec["crash"] = rec["crash"] or "service exited with %s: %s" % (
                        h.b.service.returncode, h.b.log_path.read_text()[-500:])
                    out.append(rec)
                    break
                out.append(rec)
        finally:
            h.b.close()
    return out


def summary(refs, recs, dev_recs, wall_s, command):
    faults = recs + dev_recs
    findings = []
    for r in refs + faults:
        findings += _finding(r)
    return {"faults_run": len(faults), "mil_faults": len(recs), "device_faults": len(dev_recs),
            "unsafe": sum(1 for r in refs + faults if r["unsafe"]),
            "data_lost": sum(1 for r in refs + faults if r.get("data_lost")),
            "crashes": sum(1 for r in refs + faults if r["crash"]),
            "findings": findings, "wall_s": round(wall_s, 1), "command": command}


def cmd_faults(a):
    """`greenedge faults`: run the campaign, print the summary; 1 on any finding."""
    plants = PLANTS
    if a.plants:
        plants = tuple(p.strip() for p in a.plants.split(",") if p.strip())
        bad = [p for p in plants if p not in PLANTS]
        if bad or not plants:
            raise UserError("--plants: unknown plant %s (known: %s)"
                            % (", ".join(bad) or "(none)", ",".join(PLANTS)))
    if a.jobs is not None and a.jobs < 1:
        raise UserError("--jobs: expected 1 or more")
    t0 = time.monotonic()
    refs, recs = mil_campaign(plants, a.strategy, a.short, a.jobs, a.seed)
    dev_recs = []
    if not a.no_bench:
        dev_recs = device_campaign(short=a.short)
    cmd = "greenedge faults" + (" --plants %s" % ",".join(plants) if a.plants else "") + \
        (" --short" if a.short else "") + (" --no-bench" if a.no_bench else "") + \
        (" --strategy %s" % a.strategy if a.strategy != "optimized" else "")
    res = summary(refs, recs, dev_recs, time.monotonic() - t0, cmd)
    if a.json:
        print(json.dumps(res, sort_keys=True))
    else:
        print("%s: %d faults (%d model-in-the-loop, %d on the HIL bench) in %.0f s"
              % (cmd, res["faults_run"], res["mil_faults"], res["device_faults"], res["wall_s"]))
        print("  unsafe %d, data lost %d, crashes %d, findings %d"
              % (res["unsafe"], res["data_lost"], res["crashes"], len(res["findings"])))
        for f in res["findings"]:
            extra = "" if f["kind"] != "unsafe" else " (from %.2f h, %.0f s, worst %g)" % (
                f["first_t_h"], f["seconds"], f["worst"])
            print("  - %s: %s: %s%s" % (f["fault"], f["kind"], f["what"], extra))
    return 1 if res["findings"] else 0
