"""The control cycle: input -> process -> output, per loop group.

Each group runs on its own asyncio task, scheduled on absolute times
t0 + k * period so it never drifts. One cycle:
  1. apply the command gate's pending changes for the group's loops;
  2. for each loop: freeze its snapshot from the process image and run its
     strategy inside its own error guard (a failing loop is flagged, the cycle
     goes on); a loop runs only on fresh polls of its devices (a step on old
     news would integrate the same error twice);
  3. hand the commands to the device protocols, which queue them on the lines,
     with the host heartbeat (protocol.py): only a loop whose strategy has just
     run writes it, so a loop that raised, is held (no fresh poll) or whose
     group task is stuck leaves its devices to trip to their safe state within
     their comm-loss timeout, polling or not;
  4. publish the image and the loop states to the hub.
Health: a loop is healthy while its last good run (the strategy ran, or the
operator's manual values were written) is at most health_s(loop) old: three
cycles or three polls of its slowest device, at least HEALTH_MIN_S; a loop that
never ran gets STARTUP_S from the start (first contact with its devices). The
systemd watchdog is fed only while every loop is healthy (housekeeping.py).
Jitter (start - scheduled) and overruns (a cycle that ends after its next
start; the missed slots are skipped, not bunched) are counted per group.
"""

import asyncio
import logging
import math
import time
from collections import deque

from controller.runtime import modes
from controller.stats import quantile_ms

log = logging.getLogger("greenedge.cycle")

HEALTH_MIN_S = 5.0
STARTUP_S = 60.0


class GroupStats:
    def __init__(self, period_s):
        self.period_s = period_s
        self.cycles = 0
        self.overruns = 0
        self.jitter = deque(maxlen=20000)
        self.exec_s = deque(maxlen=20000)

    def snapshot(self):
        ms = quantile_ms
        return {"period_ms": 1000 * self.period_s, "cycles": self.cycles,
                "overruns": self.overruns, "jitter_p50_ms": ms(self.jitter, 0.5),
                "jitter_p99_ms": ms(self.jitter, 0.99), "jitter_max_ms": ms(self.jitter, 1.0),
                "exec_p99_ms": ms(self.exec_s, 0.99)}


class Cycle:
    def __init__(self, loops, groups, image, protocols, gate, hub, clock, on_event):
        self.loops, self.groups = loops, groups
        self.image, self.protocols, self.gate = image, protocols, gate
        self.hub, self.clock, self.on_event = hub, clock, on_event
        self.after = asyncio.Event()   # set after every cycle (housekeeping is phase-locked)
        self.stopping = False
        self.t_start = time.monotonic()
        self.t_ok = {}                 # loop name -> monotonic time of its last good run
        self.owners = {}               # device name -> the loops that drive it
        for name, r in loops.items():
            for dn in r.cfg.devices.values():
                self.owners.setdefault(dn, []).append(name)

    def _points_of(self, runner):
        def f(role):
            dn = runner.cfg.devices.get(role)
            return self.protocols[dn].device.points if dn else None
        return f

    def health_s(self, name):
        r = self.loops[name]
        period_w = self.groups[r.cfg.group].period_s / self.clock.speedup
        poll = max((self.protocols[dn].device.poll_s for dn in r.cfg.devices.values()),
                   default=0.0)
        return max(HEALTH_MIN_S, 3 * period_w, 3 * poll)

    def unhealthy(self, now=None):
        """{loop name: why} for every loop that is not healthy now (monotonic)."""
        now = time.monotonic() if now is None else now
        out = {}
        for name, r in self.loops.items():
            t = self.t_ok.get(name)
            age = now - (self.t_start if t is None else t)
            if age > (STARTUP_S if t is None else self.health_s(name)):
                out[name] = "%s, no good run for %.1f s" % (
                    "never ran" if t is None else r.mode, age)
        return out

    def write(self, runner, now):
        """The loop has just run well: its commands, with the heartbeat of each
        device that no unhealthy loop shares."""
        name = runner.cfg.name
        self.t_ok[name] = now
        for role, cmds in runner.cmds.items():
            dn = runner.cfg.devices.get(role)
            if dn is not None:
                beat = all(o == name or now - self.t_ok.get(o, -math.inf) <= self.health_s(o)
                           for o in self.owners[dn])
                self.protocols[dn].write(cmds, now, beat=beat)

    def run_loop(self, runner, t_s, now):
        lc = runner.cfg
        if runner.manual is not None:
            if runner.mode != "manual":
                self.on_event("mode", lc.name, "%s -> manual" % runner.mode)
                runner.mode = "manual"
            runner.cmds = modes.manual_commands(runner)
            self.write(runner, now)
            return
        if runner.mode == "manual":
            modes.start_transfer(runner, t_s)
            runner.mode = "auto"
            self.on_event("mode", lc.name, "manual -> auto (ramped over %g s)" % modes.TRANSFER_S)
        prot = [self.protocols[dn] for dn in lc.devices.values()]
        down = [p.name for p in prot if not self.image.usable(p.name)]
        # First contact: wait for the full read and the identity check, so the
        # strategy's first run (its take-over of a running train) sees the
        # device, not NaN. A device refused for its identity counts as down.
        ready = all(not p.device.ever_up or (p.device.slow_done and p.identity_checked())
                    for p in prot)
        mode = "fallback" if down else "auto"
        if not ready:
            return  # first contact: nothing starts from a guess
        stamp = tuple(p.device.polls for p in prot)
        if stamp == runner.stamp and not down:
            runner.held += 1
            return  # no new measurement since the last step
        runner.stamp = stamp
        if mode != runner.mode and runner.mode != "error":
            self.on_event("mode", lc.name, "%s -> %s%s" % (
                runner.mode, mode, (" (down: %s)" % ", ".join(down)) if down else ""))
        try:
            out = runner.strategy.run(t_s, self.image.snapshot(lc.devices, runner.process, now))
            if runner.transfer is not None:
                out = modes.ramp_from_manual(runner, out, t_s, self._points_of(runner))
            if runner.mode == "error":
                self.on_event("mode", lc.name, "error -> %s" % mode)
            runner.mode = mode
            runner.cmds = out
            runner.runs += 1
            runner.t_s = t_s
        except Exception as e:  # a failing strategy is flagged; the cycle goes on
            runner.errors += 1
            if runner.mode != "error" or now - runner.last_error_log > 60:
                log.exception("loop %s failed", lc.name)
                self.on_event("loop_error", lc.name, "%s: %s" % (type(e).__name__, e))
                runner.last_error_log = now
            runner.mode = "error"
            return
        self.write(runner, now)

    def step(self, group, t_s, now):
        """One cycle of a group at plant time t_s (monotonic now)."""
        runners = [r for r in self.loops.values() if r.cfg.group == group]
        self.gate.apply([r.cfg.name for r in runners])
        for r in runners:
            self.run_loop(r, t_s, now)
        self.image.publish(now)
        if self.hub is not None:
            for r in runners:
                self.hub.publish("loop", r.cfg.name, r.state())

    async def run_group(self, name):
        gs = self.groups[name]
        period_w = gs.period_s / self.clock.speedup
        t0 = time.monotonic()
        k = 0
        while not self.stopping:
            due = t0 + k * period_w
            delay = due - time.monotonic()
            if delay > 0.002:
                # The event loop wakes to ~1 ms; the last stretch yields in a
                # tight loop so the cycle starts on time (other tasks still run).
                await asyncio.sleep(delay - 0.0015)
            while time.monotonic() < due:
                await asyncio.sleep(0)
            if self.stopping:
                return
            start = time.monotonic()
            gs.jitter.append(max(0.0, start - due))
            t_s = self.clock.plant_s()
            if t_s >= 0.0:  # a bench clock before its epoch: the plant is not running yet
                self.step(name, t_s, start)
            end = time.monotonic()
            self.after.set()
            gs.exec_s.append(end - start)
            gs.cycles += 1
            k += 1
            nxt = t0 + k * period_w
            if end > nxt:
                missed = int((end - nxt) / period_w) + 1
                gs.overruns += 1
                k += missed
