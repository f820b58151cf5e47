"""The host service: fieldbus lines, IPO cycles per loop group, accounting,
historian, persisted state, status.

Cycle (per group, on its own asyncio task, scheduled on absolute times
t0 + k * period so it never drifts): freeze a process image of the group's
loops from the latest polled values (a value that is bad at the device, older
than stale_s or from a device that is down reaches the loop as NaN), run each
loop inside its own error guard, then hand the commands to the lines, which
send them before their next poll. Jitter (start - scheduled) and overruns (a
cycle that ends after its next start; the missed slots are skipped, not
bunched) are counted per group.

Modes per loop: "auto"; "fallback" while one of its devices is down (the
strategy sees NaN and does what it defines); "manual" (the operator's values
from `greenedge mode`, over the last outputs; the strategy is frozen, and on
return to auto the analog outputs ramp to the strategy's over TRANSFER_S);
"error" if the strategy raised (outputs hold; logged once per minute).
A device gets its settings as soon as it is seen (each time it comes up), so
its safe state is the configured one from the start, even before its loop
first runs; a device that is up but disarmed (boot, comm-loss trip) gets its
settings again, the loop's current commands, then arm = 1: commands first, so
arming never applies stale ones.

Time: plant time = (wall - epoch) x speedup (bench), or Unix time (plant).
State (strategy integrators and outputs, energy counters, hourly emission
bins) is saved every 2 s of wall time and on shutdown, and restored at start:
a restart does not bump any output.
"""

import asyncio
import gc
import json
import logging
import math
import os
import signal
import socket
import sys
import time
from collections import deque

from controller.fieldbus.master import Device, Line
from controller.historian import Historian
from controller.loops import strategy_class
from controller.runtime import control
from controller.runtime import state as st
from firmware import regmap

log = logging.getLogger("greenedge.service")

REFRESH_S = 10.0       # resend unchanged commands this often (wall time)
TRANSFER_S = 60.0      # manual -> auto: analog outputs ramp over this (plant time)
ARM_RETRY_S = 1.0
STATE_EVERY_S = 1.0
STATUS_EVERY_S = 1.0


class Clock:
    def __init__(self, speedup=1.0, epoch=0.0):
        if epoch == 0.0 and speedup != 1.0:
            raise ValueError("clock_speedup needs clock_epoch (bench runs only)")
        self.speedup, self.epoch = speedup, epoch

    def plant_s(self):
        return (time.time() - self.epoch) * self.speedup


class Accounting:
    """Energy (kWh per device from measured power), CO2, hourly emission means
    and exceedance hours, from the process image (good values only)."""

    def __init__(self, cfg, devices):
        self.cfg = cfg
        # Every real-power point of a device counts (power_kw of a drive; an
        # FGD's pump and blower powers).
        self.power = {d: [p for p in dev.points if p.endswith("power_kw")] for d, dev in devices.items()}
        self.power = {d: ps for d, ps in self.power.items() if ps}
        self.kwh = {d: 0.0 for d in self.power}
        self.em = {}
        for key in ("nox", "so2"):
            ref = cfg.get(key + "_point")
            if ref:
                self.em[key] = {"ref": ref, "hour": None, "sum": 0.0, "n": 0,
                                "exceed_h": 0, "hours": 0, "last_mean": None,
                                "limit": cfg[key + "_limit_mg_nm3"]}

    def add(self, t_s, dt_s, value):
        if dt_s <= 0 or t_s < 0:
            return
        for d, pts in self.power.items():
            for name in pts:
                p = value(d, name)
                if p is not None:
                    self.kwh[d] += p * dt_s / 3600.0
        for e in self.em.values():
            v = value(*e["ref"])
            hour = int(t_s // 3600)
            if e["hour"] is not None and hour != e["hour"] and e["n"]:
                mean = e["sum"] / e["n"]
                e["last_mean"] = mean
                e["hours"] += 1
                if mean > e["limit"]:
                    e["exceed_h"] += 1
                e["sum"], e["n"] = 0.0, 0
            e["hour"] = hour
            if v is not None:
                e["sum"] += v
                e["n"] += 1

    def kpis(self):
        total = sum(self.kwh.values())
        out = {"energy_kwh": total, "co2_kg": total * self.cfg["grid_kg_co2_per_kwh"]}
        for d, v in self.kwh.items():
            out["energy_kwh.%s" % d] = v
        for key, e in self.em.items():
            out["%s_exceed_hours" % key] = e["exceed_h"]
            out["%s_hours" % key] = e["hours"]
            cur = e["sum"] / e["n"] if e["n"] else None
            out["%s_hour_mean_mg_nm3" % key] = cur if cur is not None else e["last_mean"]
        return out

    def capture(self):
        return {"kwh": self.kwh, "em": {k: {x: y for x, y in e.items() if x != "ref"}
                                        for k, e in self.em.items()}}

    def restore(self, saved):
        for d, v in saved.get("kwh", {}).items():
            if d in self.kwh:
                self.kwh[d] = v
        for k, e in saved.get("em", {}).items():
            if k in self.em:
                self.em[k].update(e)


class LoopRunner:
    def __init__(self, cfg):
        self.cfg = cfg
        self.strategy = strategy_class(cfg.plant, cfg.strategy)(cfg.params)
        self.mode = "auto"
        self.errors = 0
        self.last_error_log = -1e9
        self.cmds = {}       # role -> {point: value} of the last run
        self.runs = 0
        self.held = 0        # cycles skipped: no new poll of its devices since the last run
        self.stamp = None
        self.manual = None     # {role: {point: value}} while in manual, else None
        self.transfer = None   # (t0, {role: {point: value}}) ramping back from manual


class GroupStats:
    def __init__(self, period_s):
        self.period_s = period_s
        self.cycles = 0
        self.overruns = 0
        self.jitter = deque(maxlen=20000)
        self.exec_s = deque(maxlen=20000)

    def snapshot(self):
        j = sorted(self.jitter)
        e = sorted(self.exec_s)

        def pct(a, q):
            return 1000.0 * a[min(len(a) - 1, int(q * len(a)))] if a else None
        return {"period_ms": 1000 * self.period_s, "cycles": self.cycles,
                "overruns": self.overruns, "jitter_p50_ms": pct(j, 0.5),
                "jitter_p99_ms": pct(j, 0.99), "jitter_max_ms": pct(j, 1.0),
                "exec_p99_ms": pct(e, 0.99)}


class Service:
    def __init__(self, cfg, status_file=None, live=None, historian=True):
        self.cfg = cfg
        self.clock = Clock(cfg.speedup, cfg.epoch)
        self.status_file = status_file
        self.live = sys.stderr.isatty() if live is None else live
        self.devices = {}
        self.lines = {}
        self.t_start_wall = time.monotonic()
        self.hist = None
        if historian:
            h = cfg.historian
            self.hist = Historian(h["path"], h["commit_s"], h["retention_days"])
        for ln, lc in cfg.lines.items():
            devs = []
            for dn, dc in cfg.devices.items():
                if dc.line == ln:
                    d = Device(dn, dc.unit, dc.profile, dc.poll_s, dc.slow_s)
                    d.settings = dict(dc.settings)
                    d.arm_sent = -1e9
                    d.settings_up = 0  # the up_events count its settings were sent for
                    d.last_sent = {}
                    d.t_sent = -1e9
                    self.devices[dn] = d
                    devs.append(d)
            self.lines[ln] = Line(ln, lc.kind, devs, port=lc.port, host=lc.host,
                                  tcp_port=lc.tcp_port, baud=lc.baud, parity=lc.parity,
                                  stopbits=lc.stopbits, turnaround_s=lc.turnaround_s,
                                  on_event=self.event)
        self.line_of = {dn: self.lines[dc.line] for dn, dc in cfg.devices.items()}
        self.loops = {n: LoopRunner(lc) for n, lc in cfg.loops.items()}
        self.groups = {g: GroupStats(p) for g, p in cfg.groups.items()}
        self.acc = Accounting(cfg.accounting, self.devices)
        self.state_path = cfg.state_dir / "state.json"
        self._stop = asyncio.Event()
        self._images = {}
        self._after_cycle = asyncio.Event()
        self._control_mtime = None
        self.restored = self._restore()

    # ---- events, values --------------------------------------------------------
    def event(self, kind, source, text=""):
        t = self.clock.plant_s()
        log.info("%s %s %s", kind, source, text)
        if self.hist is not None:
            self.hist.event(t, kind, source, text)

    def value(self, dev_name, point, now=None):
        """A value fit for a loop, or None (bad, stale, or its device down)."""
        d = self.devices[dev_name]
        if not d.up or point not in d.values:
            return None
        now = time.monotonic() if now is None else now
        if now - d.t_value[point] > self.cfg.stale_s:
            return None
        if d.point_quality(point) == regmap.Q_BAD:
            return None
        return d.values[point]

    def device_image(self, dn, now):
        """{point: value or NaN} of one device, built once per new poll (and
        again when its values may have gone stale)."""
        d = self.devices[dn]
        fresh = d.up and now - getattr(d, "t_poll", -math.inf) <= self.cfg.stale_s
        key = (d.polls, d.up, fresh)
        cached = self._images.get(dn)
        if cached is not None and cached[0] == key:
            return cached[1]
        nan = math.nan
        img = dict.fromkeys(d.points, nan)
        for p in d.values:
            v = self.value(dn, p, now)
            if v is not None:
                img[p] = v
        self._images[dn] = (key, img)
        return img

    def snapshot(self, lc, now):
        snap = {}
        for role, dn in lc.devices.items():
            snap[role] = self.device_image(dn, now)
        proc = {}
        for k, v in lc.process.items():
            if isinstance(v, tuple):
                x = self.value(v[0], v[1], now)
                proc[k] = math.nan if x is None else x
            else:
                proc[k] = v
        snap["process"] = proc
        return snap

    # ---- outputs -----------------------------------------------------------------
    def _clamp(self, d, name, v):
        p = d.points.get(name)
        if p is None or p.access != "rw" or v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        return min(max(float(v), p.min), p.max)

    def send_settings(self):
        """Settings to every device that came up since they were last sent."""
        for dn, d in self.devices.items():
            if d.up and d.settings and d.settings_up != d.up_events:
                d.settings_up = d.up_events
                self.line_of[dn].submit(d, dict(d.settings))
                self.event("settings", dn, json.dumps(d.settings))

    def write_outputs(self, runner):
        now = time.monotonic()
        for role, cmds in runner.cmds.items():
            dn = runner.cfg.devices.get(role)
            if dn is None:
                continue
            d = self.devices[dn]
            if not d.up or not d.slow_done:
                continue
            vals = {}
            for name, v in cmds.items():
                c = self._clamp(d, name, v)
                if c is not None:
                    vals[name] = c
            armed = int(d.values.get("status", 0)) & regmap.ST_ARMED
            refresh = now - d.t_sent > REFRESH_S
            line = self.line_of[dn]
            if not armed:
                if now - d.arm_sent > ARM_RETRY_S:
                    first = dict(d.settings)
                    first.update(vals)
                    line.submit(d, first, arm=True)
                    d.arm_sent = now
                    d.last_sent = dict(vals)
                    d.t_sent = now
                    self.event("arm", dn, "commands %s" % json.dumps(vals))
                continue
            changed = {k: v for k, v in vals.items()  # one register step is a change
                       if refresh or abs(d.last_sent.get(k, math.inf) - v) >= d.points[k].scale}
            if changed:
                line.submit(d, changed)
                d.last_sent.update(changed)
                if refresh:
                    d.t_sent = now

    # ---- the cycle ------------------------------------------------------------------
    def run_manual(self, runner, t_s, now):
        """Manual: the operator's values over the last outputs (bumpless in);
        the strategy does not run, so it resumes from where it was."""
        if runner.mode != "manual":
            self.event("mode", runner.cfg.name, "%s -> manual" % runner.mode)
            runner.mode = "manual"
        cmds = {role: dict(v) for role, v in runner.cmds.items()}
        for role, vals in runner.manual.items():
            cmds.setdefault(role, {}).update(vals)
        runner.cmds = cmds
        self.write_outputs(runner)

    def _ramp_from_manual(self, runner, out, t_s):
        """Back in auto: analog outputs move from the manual values to the
        strategy's over TRANSFER_S of plant time (bits switch at once)."""
        t0, start = runner.transfer
        f = (t_s - t0) / TRANSFER_S
        if f >= 1.0:
            runner.transfer = None
            return out
        for role, vals in out.items():
            for k, v in vals.items():
                s0 = start.get(role, {}).get(k)
                p = self.devices[runner.cfg.devices[role]].points.get(k) \
                    if role in runner.cfg.devices else None
                if s0 is not None and p is not None and p.type != "bit" and st.finite(v):
                    vals[k] = s0 + (v - s0) * max(0.0, f)
        return out

    def run_loop(self, runner, t_s, now):
        lc = runner.cfg
        if runner.manual is not None:
            return self.run_manual(runner, t_s, now)
        if runner.mode == "manual":
            runner.transfer = (t_s, {role: dict(v) for role, v in runner.cmds.items()})
            runner.mode = "auto"
            runner.stamp = None
            self.event("mode", lc.name, "manual -> auto (ramped over %g s)" % TRANSFER_S)
        down = [dn for dn in lc.devices.values() if not self.devices[dn].up]
        ready = all(self.devices[dn].slow_done or not self.devices[dn].ever_up
                    for dn in lc.devices.values())
        mode = "fallback" if down else "auto"
        if not ready:
            return  # first contact: wait for the full read so nothing starts from a guess
        stamp = tuple(self.devices[dn].polls for dn in lc.devices.values())
        if stamp == runner.stamp and not down:
            runner.held += 1
            return  # no new measurement since the last step: a step would act on old news
        runner.stamp = stamp
        if mode != runner.mode and runner.mode != "error":
            self.event("mode", lc.name, "%s -> %s%s" % (runner.mode, mode,
                                                      (" (down: %s)" % ", ".join(down)) if down else ""))
        try:
            out = runner.strategy.run(t_s, self.snapshot(lc, now))
            if runner.transfer is not None:
                out = self._ramp_from_manual(runner, out, t_s)
            if runner.mode == "error":
                self.event("mode", lc.name, "error -> %s" % mode)
            runner.mode = mode
            runner.cmds = out
            runner.runs += 1
        except Exception as e:  # a failing strategy is flagged; the cycle goes on
            runner.errors += 1
            if runner.mode != "error" or now - runner.last_error_log > 60:
                log.exception("loop %s failed", lc.name)
                self.event("loop_error", lc.name, "%s: %s" % (type(e).__name__, e))
                runner.last_error_log = now
            runner.mode = "error"
            return
        self.write_outputs(runner)

    async def group_task(self, name):
        gs = self.groups[name]
        period_w = gs.period_s / self.clock.speedup
        runners = [r for r in self.loops.values() if r.cfg.group == name]
        t0 = time.monotonic()
        k = 0
        while not self._stop.is_set():
            due = t0 + k * period_w
            delay = due - time.monotonic()
            if delay > 0.002:
                # The event loop wakes to ~1 ms; the last stretch yields in a
                # tight loop so the cycle starts on time (other tasks still run).
                await asyncio.sleep(delay - 0.0015)
            while time.monotonic() < due:
                await asyncio.sleep(0)
            if self._stop.is_set():
                return
            start = time.monotonic()
            gs.jitter.append(max(0.0, start - due))
            t_s = self.clock.plant_s()
            if t_s >= 0.0:  # a bench clock before its epoch: the plant is not running yet
                for r in runners:
                    self.run_loop(r, t_s, start)
            end = time.monotonic()
            self._after_cycle.set()
            gs.exec_s.append(end - start)
            gs.cycles += 1
            k += 1
            nxt = t0 + k * period_w
            if end > nxt:
                missed = int((end - nxt) / period_w) + 1
                gs.overruns += 1
                k += missed

    # ---- housekeeping: accounting, historian, status, state --------------------------
    async def housekeeping(self):
        t_last = self.clock.plant_s()
        t_sample = -math.inf
        t_state = t_status = time.monotonic()
        notify = _Notifier()
        notify.send("READY=1")
        last = 0.0
        while not self._stop.is_set():
            # Phase-locked to the cycles: the work runs right after a cycle has
            # written its outputs, when the next cycle is furthest away.
            self._after_cycle.clear()
            try:
                await asyncio.wait_for(self._after_cycle.wait(), timeout=0.25)
            except asyncio.TimeoutError:
                pass
            if self._stop.is_set():
                break
            now = time.monotonic()
            if now - last < 0.2:
                continue
            last = now
            self.poll_control()
            self.send_settings()
            t = self.clock.plant_s()
            self.acc.add(t, t - t_last, lambda d, p: self.value(d, p, now))
            t_last = t
            if self.hist is not None and t - t_sample >= self.cfg.historian["sample_s"]:
                t_sample = t
                rows = []
                for dn, d in self.devices.items():
                    for p, v in d.values.items():
                        if isinstance(v, (int, float)):
                            q = d.point_quality(p) if d.up else regmap.Q_BAD
                            if now - d.t_value[p] > self.cfg.stale_s:
                                q = regmap.Q_BAD
                            rows.append(("%s.%s" % (dn, p), float(v), q))
                for ln, r in self.loops.items():
                    for role, cmds in r.cmds.items():
                        for p, v in cmds.items():
                            rows.append(("%s.cmd.%s.%s" % (ln, role, p), float(v), 0))
                self.hist.samples(t, rows)
                self.hist.kpis(t, self.acc.kpis())
            if now - t_state >= STATE_EVERY_S:
                self.save_state()
                t_state = now
            if now - t_status >= STATUS_EVERY_S:
                self.report_status()
                notify.send("WATCHDOG=1")
                t_status = now
        notify.send("STOPPING=1")

    def status(self):
        up = sum(1 for d in self.devices.values() if d.up)
        return {
            "name": self.cfg.name, "plant_s": self.clock.plant_s(),
            "wall_s": time.monotonic() - self.t_start_wall,
            "devices_up": up, "devices_total": len(self.devices),
            "devices": {dn: {"up": d.up, "polls": d.polls, "up_events": d.up_events,
                             "down_events": d.down_events} for dn, d in self.devices.items()},
            "lines": {ln: dict(l.stats.snapshot(l.serial), timeout_ms=1000 * l.timeout_s)
                      for ln, l in self.lines.items()},
            "groups": {g: s.snapshot() for g, s in self.groups.items()},
            "loops": {n: {"mode": r.mode, "runs": r.runs, "held": r.held, "errors": r.errors}
                      for n, r in self.loops.items()},
            "kpis": self.acc.kpis(), "restored": self.restored,
        }

    def report_status(self):
        s = self.status()
        if self.status_file:
            tmp = str(self.status_file) + ".tmp"
            with open(tmp, "w") as f:
                json.dump(s, f, allow_nan=False, default=str)
            os.replace(tmp, self.status_file)
        util = " ".join("%s %.0f%%" % (ln, 100 * (v["utilisation"] or 0))
                        for ln, v in s["lines"].items() if v["utilisation"] is not None)
        cyc = " ".join("%s p99 %.1fms" % (g, v["jitter_p99_ms"] or 0) for g, v in s["groups"].items())
        k = s["kpis"]
        em = " ".join("%s %.1f" % (x.upper(), k["%s_hour_mean_mg_nm3" % x])
                      for x in ("nox", "so2") if k.get("%s_hour_mean_mg_nm3" % x) is not None)
        line = "t %.2f h | devices %d/%d | lines %s | cycle %s | %.1f kWh %s" % (
            s["plant_s"] / 3600.0 if self.clock.epoch else 0.0, s["devices_up"],
            s["devices_total"], util or "-", cyc or "-", k["energy_kwh"], em)
        if self.live:
            sys.stderr.write("\r" + line[:160].ljust(160))
            sys.stderr.flush()
        else:
            log.info(line)

    def poll_control(self):
        """Operator requests (`greenedge mode`): state_dir/control.json, read
        when it changes. A bad file is reported once and ignored."""
        path = self.cfg.state_dir / "control.json"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return
        if mtime == self._control_mtime:
            return
        self._control_mtime = mtime
        try:
            loops = control.read(path, self.cfg)
        except ValueError as e:
            self.event("control_error", str(path), str(e))
            return
        for name, runner in self.loops.items():
            req = loops.get(name)
            runner.manual = req["outputs"] if req and req["mode"] == "manual" else None

    def save_state(self):
        data = {"plant_s": self.clock.plant_s(), "wall": time.time(),
                "loops": {n: st.capture(r.strategy) for n, r in self.loops.items()},
                "accounting": self.acc.capture()}
        st.save(self.state_path, data)

    def _restore(self):
        saved = st.load(self.state_path)
        if not saved:
            return False
        for n, s in saved.get("loops", {}).items():
            if n in self.loops:
                st.restore(self.loops[n].strategy, s)
        self.acc.restore(saved.get("accounting", {}))
        return True

    # ---- lifecycle ---------------------------------------------------------------------
    def stop(self):
        self._stop.set()

    async def run(self, duration_s=None):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError):
                pass  # not the main thread (tests): stop() is called directly
        self.event("start", self.cfg.name, "restored state" if self.restored else "fresh state")
        # Everything built so far lives for the whole run: keep it out of the
        # collector's scans, and collect young objects in larger, rarer batches
        # (a full collection of a big heap stalls the event loop for ms).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20000, 20, 100)
        tasks = [asyncio.create_task(l.run()) for l in self.lines.values()]
        tasks += [asyncio.create_task(self.group_task(g)) for g in self.groups]
        tasks.append(asyncio.create_task(self.housekeeping()))
        try:
            if duration_s is not None:
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=duration_s)
                except asyncio.TimeoutError:
                    pass
            else:
                await self._stop.wait()
        finally:
            self._stop.set()
            for l in self.lines.values():
                l.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.save_state()
            self.report_status()
            if self.live:
                sys.stderr.write("\n")
            self.event("stop", self.cfg.name, "")
            if self.hist is not None:
                self.hist.close()
        return self.status()


class _Notifier:
    """sd_notify without libsystemd: a datagram to $NOTIFY_SOCKET, if set."""

    def __init__(self):
        addr = os.environ.get("NOTIFY_SOCKET")
        self.addr = None
        if addr:
            self.addr = "\0" + addr[1:] if addr.startswith("@") else addr
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(self, msg):
        if self.addr:
            try:
                self.sock.sendto(msg.encode(), self.addr)
            except OSError:
                pass
