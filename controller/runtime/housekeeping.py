"""Housekeeping: everything the service does besides the cycle, phase-locked
to it (it runs right after a cycle has written its outputs, when the next
cycle is furthest away), at most every 0.2 s:

- the control file of `greenedge mode` (state_dir/control.json) read when it
  changes, each change a command through the gate (who "cli", role operator);
- settings to devices that came up; the heartbeat of armed devices that no
  loop drives (metering: protocol.py keepalive);
- live accounting over the plant time since the last pass, KPIs to the hub;
- state saved every STATE_EVERY_S (restored at start: a restart bumps nothing);
- the status to the hub every STATUS_EVERY_S, and the systemd watchdog fed
  then only while every loop is healthy (cycle.py: a loop that raised, is
  held or stuck for longer than its health window holds the feed, with one
  watchdog_held event naming it; systemd restarts the service WatchdogSec
  later, deploy/greenedge.service).

The historian and the status line are hub subscribers (HistorianSink,
StatusLine below): they see what any interface sees, nothing more.
"""

import asyncio
import json
import logging
import os
import socket
import sys
import time

from controller.runtime import control
from firmware import regmap

log = logging.getLogger("greenedge.service")

STATE_EVERY_S = 1.0
STATUS_EVERY_S = 1.0


class ControlFile:
    """`greenedge mode` requests: the file's loops, as gate commands on change."""

    def __init__(self, path, cfg, gate, on_event):
        self.path, self.cfg, self.gate, self.on_event = path, cfg, gate, on_event
        self._mtime = None
        self._last = {}

    def poll(self):
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            loops = control.read(self.path, self.cfg)
        except ValueError as e:
            self.on_event("control_error", str(self.path), str(e))
            return
        for name, req in loops.items():
            if req == self._last.get(name):
                continue
            self._last[name] = req
            t = self.gate.submit("cli", "operator", "mode", name, mode=req["mode"],
                                 outputs=req["outputs"] or None)
            if not t.accepted:
                self.on_event("control_error", name, t.reason)


class Notifier:
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


class HistorianSink:
    """Hub -> historian: device points every sample_s (quality Q_BAD once
    older than stale_s), loop commands, KPIs, events and audit records."""

    def __init__(self, hub, hist, sample_s, stale_s, clock, on_event):
        self.sub = hub.subscribe("historian", ("device", "loop", "kpi", "event", "audit"))
        self.hist, self.sample_s, self.stale_s, self.clock = hist, sample_s, stale_s, clock
        self.on_event = on_event
        self.error = None
        self.devices, self.loops, self.kpis = {}, {}, None
        self.t_sample = -float("inf")

    def pump(self):
        err = self.hist.error
        if err != self.error:  # the writer's state changed: say so once
            self.error = err
            self.on_event("historian_error" if err else "historian_ok", str(self.hist.path),
                          err or "writing again")
        state, stream = self.sub.drain()
        for (topic, key), v in state.items():
            if topic == "device":
                self.devices[key] = v
            elif topic == "loop":
                self.loops[key] = v
            else:
                self.kpis = v
        for topic, item in stream:
            if topic == "event":
                self.hist.event(item["t_s"], item["kind"], item["source"], item["text"])
            else:
                self.hist.audit(item)
        t = self.clock.plant_s()
        if t - self.t_sample < self.sample_s:
            return
        self.t_sample = t
        wall = time.time()
        rows = []
        for dn, dv in self.devices.items():
            for p, (v, q, t_src) in dv["points"].items():
                if not dv["up"] or wall - t_src > self.stale_s:
                    q = regmap.Q_BAD
                rows.append(("%s.%s" % (dn, p), v, q))
        for ln, lv in self.loops.items():
            for role, cmds in lv["cmds"].items():
                for p, v in cmds.items():
                    rows.append(("%s.cmd.%s.%s" % (ln, role, p), float(v), 0))
        if rows:
            self.hist.samples(t, rows)
        if self.kpis is not None:
            self.hist.kpis(t, self.kpis)


class StatusLine:
    """Hub -> one status line (stderr on a terminal, else the log) and the
    JSON status file."""

    def __init__(self, hub, status_file, live, bench_clock):
        self.sub = hub.subscribe("status", ("status",))
        self.status_file, self.live, self.bench_clock = status_file, live, bench_clock
        self.last = None

    def pump(self):
        state, _ = self.sub.drain()
        s = state.get(("status", "service"))
        if s is None:
            return
        self.last = s
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
            s["plant_s"] / 3600.0 if self.bench_clock else 0.0, s["devices_up"],
            s["devices_total"], util or "-", cyc or "-", k["energy_kwh"], em)
        if self.live:
            sys.stderr.write("\r" + line[:160].ljust(160))
            sys.stderr.flush()
        else:
            log.info(line)


class Housekeeping:
    def __init__(self, svc):
        self.svc = svc
        self.control = ControlFile(svc.cfg.state_dir / "control.json", svc.cfg, svc.gate, svc.event)
        driven = {dn for lc in svc.cfg.loops.values() for dn in lc.devices.values()}
        self.loopless = [p for dn, p in svc.protocols.items() if dn not in driven]
        self.held = {}  # loops holding the watchdog feed: {name: why}
        self.notify = None

    def feed_watchdog(self):
        """WATCHDOG=1 only while every loop is healthy; an event when that changes."""
        held = self.svc.cycle.unhealthy()
        if set(held) != set(self.held):
            if held:
                self.svc.event("watchdog_held", ", ".join(sorted(held)), "; ".join(
                    "%s: %s" % kv for kv in sorted(held.items())))
            else:
                self.svc.event("watchdog_fed", self.svc.cfg.name, "every loop healthy again")
        self.held = held
        if not held:
            self.notify.send("WATCHDOG=1")

    async def run(self):
        svc = self.svc
        t_last = svc.clock.plant_s()
        t_state = t_status = time.monotonic()
        notify = self.notify = Notifier()
        notify.send("READY=1")
        last = 0.0
        while not svc.stopping:
            svc.cycle.after.clear()
            try:
                await asyncio.wait_for(svc.cycle.after.wait(), timeout=0.25)
            except asyncio.TimeoutError:
                pass
            if svc.stopping:
                break
            now = time.monotonic()
            if now - last < 0.2:
                continue
            last = now
            self.control.poll()
            for p in svc.protocols.values():
                p.send_settings()
            for p in self.loopless:
                p.keepalive(now)
            t = svc.clock.plant_s()
            svc.acc.add(t, t - t_last, lambda d, p: svc.image.value(d, p, now))
            t_last = t
            svc.hub.publish("kpi", "kpis", svc.acc.kpis())
            for sink in svc.sinks:
                sink.pump()
            if now - t_state >= STATE_EVERY_S:
                svc.save_state()
                t_state = now
            if now - t_status >= STATUS_EVERY_S:
                svc.publish_status()
                self.feed_watchdog()
                t_status = now
        notify.send("STOPPING=1")
