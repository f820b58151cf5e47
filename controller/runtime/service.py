"""The host service: wires the runtime's parts and runs them.

    lines (fieldbus masters, one task each)  ->  process image
    cycle (one task per loop group)          ->  device protocols -> lines
    housekeeping (one task)                  ->  accounting, state, hub sinks
    hub                                      ->  historian, status, alarms, interfaces
    command gate                             <-  `greenedge mode`, interfaces

Each concern lives in its own module (docs/architecture.md); this one only
builds them from the config and starts and stops them. Seams for tests: the
clock (runtime/clock.py; the bench passes its scaled clock) and the lines
(fieldbus masters, e.g. on an in-process fake line: hil_tests/fakeline.py)
are arguments.

State (strategy integrators and outputs, energy counters, hourly emission
bins) is saved every second of wall time and on shutdown, and restored at
start: a restart does not bump any output.
"""

import asyncio
import gc
import logging
import signal
import sys
import time

from controller.alarms.engine import AlarmEngine, AlarmRecorder
from controller.fieldbus.device import Device
from controller.fieldbus.master import Line
from controller.historian import Historian
from controller.runtime import state as st
from controller.runtime.accounting import LiveAccounting
from controller.runtime.clock import WallClock
from controller.runtime.cycle import Cycle, GroupStats
from controller.runtime.gate import CommandGate
from controller.runtime.housekeeping import Housekeeping, HistorianSink, StatusLine
from controller.runtime.hub import Hub
from controller.runtime.image import ProcessImage
from controller.runtime.modes import LoopRunner
from controller.runtime.protocol import DeviceProtocol

SWITCH_INTERVAL_S = 0.0005   # the GIL's switch interval while the service runs (run())

log = logging.getLogger("greenedge.service")


def build_lines(cfg, on_event, client_factory=None):
    """{line name: Line} with its Devices, from the config."""
    lines = {}
    for ln, lc in cfg.lines.items():
        devs = [Device(dn, dc.unit, dc.profile, dc.poll_s, dc.slow_s)
                for dn, dc in cfg.devices.items() if dc.line == ln]
        lines[ln] = Line(ln, lc.kind, devs, port=lc.port, host=lc.host, tcp_port=lc.tcp_port,
                         baud=lc.baud, parity=lc.parity, stopbits=lc.stopbits,
                         turnaround_s=lc.turnaround_s, on_event=on_event,
                         client_factory=client_factory)
    return lines


class Service:
    def __init__(self, cfg, status_file=None, live=None, historian=True, clock=None, lines=None):
        """clock: a runtime clock (default: wall clock); lines: {name: Line}
        built by build_lines (default: the config's real lines)."""
        self.cfg = cfg
        self.clock = clock or WallClock()
        self.hub = Hub()
        self.t_start_wall = time.monotonic()
        self.hist = None
        if historian:
            h = cfg.historian
            self.hist = Historian(h["path"], h["commit_s"], h["retention_days"], h["max_mb"])
        self.lines = lines if lines is not None else build_lines(cfg, self.event)
        for line in self.lines.values():
            line.on_event = self.event
        self.devices = {d.name: d for line in self.lines.values() for d in line.devices}
        missing = set(cfg.devices) - set(self.devices)
        if missing:
            raise ValueError("lines do not carry devices %s" % ", ".join(sorted(missing)))
        line_of = {d.name: line for line in self.lines.values() for d in line.devices}
        self.protocols = {dn: DeviceProtocol(d, line_of[dn], cfg.devices[dn].settings, self.event,
                                             cfg.devices[dn].settings_key)
                          for dn, d in self.devices.items()}
        self.image = ProcessImage(self.devices, self.protocols, cfg.stale_s, self.hub)
        self.loops = {n: LoopRunner(lc) for n, lc in cfg.loops.items()}
        self.groups = {g: GroupStats(p) for g, p in cfg.groups.items()}
        self.gate = CommandGate(cfg, self.loops, self.hub, self.clock)
        self.cycle = Cycle(self.loops, self.groups, self.image, self.protocols, self.gate,
                           self.hub, self.clock, self.event)
        self.acc = LiveAccounting(cfg.accounting, self.devices)
        live = sys.stderr.isatty() if live is None else live
        self.status_line = StatusLine(self.hub, status_file, live,
                                      bench_clock=getattr(self.clock, "epoch", None) is not None)
        self.sinks = [self.status_line]
        if self.hist is not None:
            self.sinks.insert(0, HistorianSink(self.hub, self.hist, cfg.historian["sample_s"],
                                               cfg.stale_s, self.clock, self.event))
        # Alarms: evaluated in housekeeping's pass (never inside a cycle), recorded.
        self.alarms = AlarmEngine(cfg, self.hub, self.gate, self.clock, self.event)
        self.sinks.insert(0, self.alarms)
        if self.hist is not None:
            self.sinks.insert(2, AlarmRecorder(self.hub, self.hist, self.alarms))
        self.housekeeping = Housekeeping(self)
        self.north = []   # northbound interfaces (controller/north), started by run()
        self.state_path = cfg.state_dir / "state.json"
        self.stopping = False
        self.state_error = None
        self._stop = None
        self.restored = self._restore()

    # ---- events, status -----------------------------------------------------------
    def event(self, kind, source, text=""):
        t = self.clock.plant_s()
        log.info("%s %s %s", kind, source, text)
        self.hub.emit("event", {"t_s": t, "kind": kind, "source": source, "text": text})

    def status(self):
        up = sum(1 for d in self.devices.values() if d.up)
        unhealthy = self.cycle.unhealthy()
        return {
            "name": self.cfg.name, "plant_s": self.clock.plant_s(),
            "wall_s": time.monotonic() - self.t_start_wall,
            "devices_up": up, "devices_total": len(self.devices),
            "devices": {dn: {"up": d.up, "polls": d.polls, "up_events": d.up_events,
                             "down_events": d.down_events,
                             "identity_ok": self.protocols[dn].identity_ok,
                             "writes_refused": self.protocols[dn].refused,
                             "heartbeats": self.protocols[dn].beats}
                        for dn, d in self.devices.items()},
            "lines": {ln: dict(l.stats.snapshot(l.serial), timeout_ms=1000 * l.timeout_s)
                      for ln, l in self.lines.items()},
            "groups": {g: s.snapshot() for g, s in self.groups.items()},
            "loops": {n: {"mode": r.mode, "runs": r.runs, "held": r.held, "errors": r.errors,
                          "healthy": n not in unhealthy}
                      for n, r in self.loops.items()},
            "gate": {"accepted": self.gate.accepted, "refused": self.gate.refused},
            "alarms": self.alarms.summary(),
            "hub": self.hub.stats(),
            "historian": self.hist.health() if self.hist is not None else None,
            "kpis": self.acc.kpis(), "restored": self.restored,
        }

    def publish_status(self):
        self.hub.publish("status", "service", self.status())

    # ---- state ------------------------------------------------------------------------
    def save_state(self):
        """Saved every second; a failure (disk full, read-only) is reported once
        and control goes on (the last good file stays in place)."""
        data = {"plant_s": self.clock.plant_s(), "wall": time.time(),
                "loops": {n: st.capture(r.strategy) for n, r in self.loops.items()},
                "accounting": self.acc.capture()}
        try:
            st.save(self.state_path, data)
        except OSError as e:
            if self.state_error is None:
                self.event("state_save_failed", str(self.state_path), str(e))
            self.state_error = str(e)
            return
        if self.state_error is not None:
            self.event("state_saved", str(self.state_path), "saving again")
        self.state_error = None

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
        self.stopping = True
        self.cycle.stopping = True
        if self._stop is not None:
            self._stop.set()

    async def run(self, duration_s=None):
        self._stop = asyncio.Event()
        if self.stopping:
            self._stop.set()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests): stop() is called directly
        self.event("start", self.cfg.name, "restored state" if self.restored else "fresh state")
        # Everything built so far lives for the whole run: keep it out of the
        # collector's scans, and collect young objects in larger, rarer batches
        # (a full collection of a big heap stalls the event loop for ms).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20000, 20, 100)
        self.cycle.after = asyncio.Event()
        self.north = start_north(self)   # own threads: none waits on the cycle, nor it on them
        tasks = [asyncio.create_task(l.run()) for l in self.lines.values()]
        tasks += [asyncio.create_task(self.cycle.run_group(g)) for g in self.groups]
        tasks.append(asyncio.create_task(self.housekeeping.run()))
        # The interfaces and the historian run on their own threads. A thread in
        # the middle of pure-Python work (the HMI building a 5,000-tag frame)
        # keeps the GIL until the interpreter's switch interval forces it off
        # (5 ms by default), and a cycle due meanwhile starts that much late.
        # SWITCH_INTERVAL_S bounds that wait (bench/run.py hmi, docs/hmi.md).
        switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=duration_s)
            except asyncio.TimeoutError:
                pass
        finally:
            self.stop()
            for l in self.lines.values():
                l.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            for iface in reversed(self.north):
                iface.stop()
            self.save_state()
            self.publish_status()
            self.event("stop", self.cfg.name, "")
            for sink in self.sinks:
                sink.pump()
            if self.status_line.live:
                sys.stderr.write("\n")
            if self.hist is not None:
                self.hist.close()
            sys.setswitchinterval(switch)
        return self.status()


def start_north(svc):
    """The configured northbound interfaces (cfg.north: [metrics], [opcua], or
    `greenedge run --metrics / --opcua`), started; [] when none is."""
    north = getattr(svc.cfg, "north", None) or {}
    out = []
    try:
        if north.get("metrics"):
            from controller.north import parse_hostport
            from controller.north.prometheus import MetricsServer
            host, port = parse_hostport(north["metrics"]["listen"], "metrics")
            out.append(MetricsServer(host, port, svc.hub, svc.lines, svc.groups,
                                     svc.alarms).start())
        if north.get("opcua"):
            from controller.north.opcua import OpcUaServer
            period = min(svc.cfg.groups.values(), default=1.0) / svc.clock.speedup
            out.append(OpcUaServer(svc.cfg, north["opcua"], svc.hub, svc.gate, period,
                                   kpi_keys=svc.acc.kpis()).start())
        if north.get("mqtt"):
            from controller.north.sparkplug import SparkplugNode   # [mqtt], --mqtt
            period = min(svc.cfg.groups.values(), default=1.0) / svc.clock.speedup
            out.append(SparkplugNode(svc.cfg, north["mqtt"], svc.hub, svc.gate, period,
                                     kpi_keys=svc.acc.kpis()).start())
        if north.get("hmi"):
            from controller.north.hmi.server import HmiServer   # [hmi], --hmi: docs/hmi.md
            out.append(HmiServer(svc, north["hmi"]).start())
    except BaseException:
        for iface in reversed(out):
            iface.stop()
        raise
    return out
