"""The HIL bench: simulated plant, real firmware, real Modbus, real service.

Bench(plants, ...) starts, in order:
  - one virtual RS-485 line per bus (hil_tests/vline.py, wire timing at the
    baud, 11 bits per character) and a transparent TCP gateway in front of the
    line that has one (hil_tests/gateway.py);
  - one firmware process per device on the MicroPython unix port
    (hil_tests/devices.py), each with a plant link (firmware/plantlink.py);
  - the plant simulators, stepped by the bench on the bench clock (plant time =
    (wall - epoch) x speedup), feeding each device's inputs and taking its
    driven outputs every 20 ms of wall time;
  - `greenedge run -c bench.toml` (a separate process, as on a plant PC) with
    the same epoch and speedup.
run() steps until the plant hours are done, scores the plant's true values in
the KPI frame (controller/accounting.py) and reads the service's own KPIs
from its historian. close() tears everything down, on failure too.

Time scaling rule (docs/scenarios.md): what lives in the plant or the host's
loops runs on plant time (scenarios, strategies, hourly means); what guards
the wire runs on wall time (Modbus timeouts, silences, comm-loss trips). Device
settings that are times or rates on the device clock are scaled when the
bench writes them: ramp rates x speedup, minimum on/off times / speedup,
starts per hour x speedup (each clamped to the register's range).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from controller.accounting import KpiFrame
from controller.loops import ROLES, strategy_class
from controller.registers import point_map
from hil_tests.devices import DeviceProcess
from hil_tests.gateway import Gateway
from hil_tests.plantlink import DeviceLink
from hil_tests.plants import plant_class
from hil_tests.scenario import SCENARIO_DIR, load_scenario
from hil_tests.vline import VirtualLine

ROOT = Path(__file__).resolve().parent.parent

# Demo plant: plant -> (bus, {role: (device, unit)}).
DEMO = {
    "fan": ("rtu1", {"drive": ("fan", 1)}),
    "pump": ("rtu1", {"drive": ("pump", 2)}),
    "scr": ("rtu1", {"scr": ("scr", 3)}),
    "compressor": ("rtu2", {"c1": ("c1", 11), "c2": ("c2", 12), "c3": ("c3", 13),
                            "vsd": ("vsd", 14)}),
    "fgd": ("gw", {"fgd": ("fgd", 21)}),
}
GATEWAY_BUSES = ("gw",)
SLOW_ROLES = {"c1": 250, "c2": 250, "c3": 250}  # device poll periods (ms of wall time)
DESIGN_KEYS = ("flow_design_m3s",)

# Device settings on the device clock: (kind, register) -> scaled with speedup.
_RATE = ("ramp_up_pct_s", "ramp_down_pct_s", "speed_ramp_pct_s", "valve_rate_pct_s",
         "feeder_rate_pct_s")
_TIME = ("min_on_s", "min_off_s", "pump_min_on_s", "pump_min_off_s")
_PER_H = ("max_starts_per_h",)


def scenario_for(plant, name):
    """'standard', 'disturbances' or a file name: the plant's own if it has one."""
    for cand in ("%s_%s" % (plant, name), name):
        if (SCENARIO_DIR / ("%s.toml" % cand)).exists() and cand.startswith(plant):
            return cand
    if name.endswith(".toml") or (SCENARIO_DIR / ("%s.toml" % name)).exists():
        return name
    return "%s_standard" % plant


def scaled_settings(profile, speedup):
    out = {}
    for p in point_map(profile).values():
        if p.access != "rw" or p.default is None:
            continue
        if p.name in _RATE:
            v = p.default * speedup
        elif p.name in _TIME:
            v = p.default / speedup
        elif p.name in _PER_H:
            v = p.default * speedup
        else:
            continue
        out[p.name] = round(min(max(v, p.min), p.max), 3)
    return out


class Bench:
    def __init__(self, plants=None, speedup=60.0, hours=1.0, scenario="standard", seed=None,
                 workdir=None, baud=115200, strategy="optimized", comm_loss_s=10.0,
                 line_faults=None, stale_s=3.0, ports=None, link_ports=None, hw_format="8E1",
                 loop_params=None, hmi=None):
        """ports {bus: tty} and link_ports {device: tty}: real-hardware mode for
        those buses: boards flashed with the firmware in sim-input mode (config
        link_uart) on real RS-485 ports, the plant reaching each over its own
        serial link; no virtual line or device process is started for them."""
        self.plant_names = list(plants or DEMO)
        self.speedup = float(speedup)
        self.hours = float(hours)
        self.baud = baud
        self.strategy = strategy
        self.comm_loss_s = comm_loss_s
        self.stale_s = stale_s
        self.line_faults = dict(line_faults or {})
        self.loop_params = dict(loop_params or {})
        self.ports = dict(ports or {})
        self.link_ports = dict(link_ports or {})
        self.hw_format = hw_format
        self.hmi = hmi            # {"listen", "users"}: the service's web HMI (demo --hmi)
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="greenedge-bench-")
            workdir = self._tmp.name
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lines, self.gateways, self.devices, self.links = {}, {}, {}, {}
        self.service = None
        self.plants, self.kpi, self.scenarios, self.applied = {}, {}, {}, {}
        self.found = {}
        for name in self.plant_names:
            cls = plant_class(name)
            sc = load_scenario(scenario_for(name, scenario), cls.SPEC, self.hours, seed, name)
            opts = strategy_class(name, strategy).plant_options
            self.plants[name] = cls(name, sc, options=opts)
            # What the plant's actuators are found at (before any device drives them).
            self.found[name] = {r: dict(c) for r, c in self.plants[name].cmd.items()}
            self.kpi[name] = KpiFrame(name)
            self.scenarios[name] = sc.name
        self.trace = {n: [] for n in self.plant_names}
        self.t_plant = 0.0
        self.epoch = None
        self.config_path = self.dir / "bench.toml"
        self.status_path = self.dir / "status.json"
        self.log_path = self.dir / "service.log"

    # ---- start ------------------------------------------------------------------------
    def buses(self):
        out = {}
        for name in self.plant_names:
            bus, roles = DEMO[name]
            for role, (dev, unit) in roles.items():
                out.setdefault(bus, []).append((name, role, dev, unit))
        return out

    def start(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self):
        port = 47100 + (os.getpid() % 400) * 20
        for bus, members in self.buses().items():
            if bus in self.ports:
                for plant, role, dev, unit in members:
                    if dev not in self.link_ports:
                        raise ValueError("device %s on hardware bus %s needs a link port"
                                         % (dev, bus))
                    self.links[dev] = DeviceLink(ROLES[plant][role], tty=self.link_ports[dev])
                continue
            line = VirtualLine(len(members) + 1, self.baud, log_path=self.dir / ("%s.jsonl" % bus),
                               **self.line_faults.get(bus, {}))
            self.lines[bus] = line
            if bus in GATEWAY_BUSES:
                self.gateways[bus] = Gateway(line.ports[0])
            for k, (plant, role, dev, unit) in enumerate(members):
                profile = ROLES[plant][role]
                port += 1
                extra = ["--link", str(port), "--comm-loss-s", str(self.comm_loss_s)]
                self.devices[dev] = DeviceProcess(profile, unit, line.ports[k + 1], self.baud,
                                                  extra=extra)
                self.links[dev] = DeviceLink(profile, udp_port=port)
        # Plant at t = 0 on every device's inputs before anyone polls.
        self.exchange()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(l.last is None for l in self.links.values()):
            time.sleep(0.05)
            self.exchange()
        missing = [d for d, l in self.links.items() if l.last is None]
        if missing:
            raise RuntimeError("plant link: no reply from %s" % ", ".join(missing))
        self.epoch = time.time() + 5.0  # the service starts and arms within this
        self.write_config()
        self._log = open(self.log_path, "w")
        self.start_service()

    def write_config(self, path=None):
        lines = ["[service]", 'name = "hil-bench"', 'state_dir = "state"',
                 "stale_s = %g" % self.stale_s, "", "[bench]",
                 "clock_speedup = %g" % self.speedup, "clock_epoch = %.6f" % self.epoch, ""]
        for bus, members in self.buses().items():
            lines.append("[lines.%s]" % bus)
            if bus in self.ports:
                fmt = self.hw_format
                lines += ['kind = "rtu"', 'port = "%s"' % self.ports[bus], "baud = %d" % self.baud,
                          'parity = "%s"' % fmt[1], "stopbits = %s" % fmt[2],
                          "turnaround_ms = 10", ""]
                continue
            if bus in GATEWAY_BUSES:
                host, port = self.gateways[bus].address
                lines += ['kind = "rtu_tcp"', 'host = "%s"' % host, "port = %d" % port]
            else:
                lines += ['kind = "rtu"', 'port = "%s"' % self.lines[bus].ports[0]]
            # A pty takes no parity (docs/toolchain.md): 8N2 is the other 11-bit format.
            lines += ["baud = %d" % self.baud, 'parity = "N"', "stopbits = 2",
                      "turnaround_ms = 5", ""]
        for bus, members in self.buses().items():
            for plant, role, dev, unit in members:
                profile = ROLES[plant][role]
                lines += ["[devices.%s]" % dev, 'line = "%s"' % bus, "unit = %d" % unit,
                          'profile = "%s"' % profile]
                if role in SLOW_ROLES:
                    # Their loop reads only faults and run hours from them; the
                    # header pressure comes from the VSD, polled every round.
                    lines.append("poll_ms = %d" % SLOW_ROLES[role])
                sets = scaled_settings(profile, self.speedup)
                sets.update(self.duty_safe_state(plant, role))
                sets["comm_loss_timeout_s"] = self.comm_loss_s
                lines.append("settings = { %s }" % ", ".join("%s = %g" % kv for kv in sets.items()))
                lines.append("")
        lines += ["[groups.process]", "period_ms = 1000", ""]
        for plant in self.plant_names:
            _, roles = DEMO[plant]
            lines += ["[loops.%s]" % plant, 'plant = "%s"' % plant,
                      'strategy = "%s"' % self.strategy, 'group = "process"',
                      "devices = { %s }" % ", ".join('%s = "%s"' % (r, d) for r, (d, _) in roles.items())]
            if plant in ("fan", "pump"):
                design = self.plants[plant].p["design_flow_m3s"]
                lines.append('process = { flow_sp_m3s = "%s.process_sp", flow_design_m3s = %g }'
                             % (roles["drive"][0], design))
            # The strategies' defaults are tuned for the bench's sampling (a poll
            # round of a shared line: ~6 plant-s at 60x); loop_params overrides.
            params = self.loop_params.get(plant)
            if params:
                lines.append("params = { %s }" % ", ".join("%s = %g" % kv for kv in params.items()))
            lines.append("")
        lines += ["[accounting]"]
        if "scr" in self.plant_names:
            lines.append('nox_point = "scr.nox_out_mg_nm3"')
        if "fgd" in self.plant_names:
            lines.append('so2_point = "fgd.so2_out_mg_nm3"')
        lines += ["", "[historian]", 'path = "history.db"', "commit_s = 1.0", "sample_s = 60", ""]
        if self.hmi:
            lines += ["[hmi]", 'listen = "%s"' % self.hmi["listen"],
                      'users = "%s"' % Path(self.hmi["users"]).resolve(), ""]
        (path or self.config_path).write_text("\n".join(lines))

    def duty_safe_state(self, plant, role):
        """A train found running holds its duty in the safe state: the drive's
        safe speed (or damper) is the one the plant runs at when the bench
        starts. The devices boot into their safe state while the plant already
        runs and the service takes over a few plant-seconds later (longer at
        60x); the profile's generic 50 % would starve a pump against its static
        head meanwhile. On a real unit the safe speed is chosen the same way:
        the duty that keeps the process whole while the host is away."""
        pl = self.plants[plant]
        if plant == "fgd":
            # An absorber in operation: the recirculation pumps, feeder and
            # blower the strategy starts the day with (its first commands on
            # the plant at t = 0), so the devices' boot (every output off until
            # armed) does not stop a running unit while the service takes over.
            first = strategy_class("fgd", self.strategy)().run(0.0, pl.measure())["fgd"]
            out = {"pump%d_run_safe" % i: int(first["pump%d_run" % i]) for i in range(1, 6)}
            out.update(feeder_safe_pct=round(first["feeder_cmd_pct"], 2),
                       blower_safe_pct=round(first["blower_cmd_pct"], 2))
            return out
        if plant not in ("fan", "pump") or role != "drive" or not pl.p["initial_running"]:
            return {}
        cmd = self.found[plant]["drive"]
        return {"speed_safe_pct": round(cmd["speed_ref_pct"], 2),
                "damper_safe_pct": round(cmd["damper_cmd_pct"], 2), "run_safe": 1}

    # ---- the plant side ---------------------------------------------------------------
    def exchange(self):
        """Plant values to every device, driven outputs back into the plants."""
        for name in self.plant_names:
            pl = self.plants[name]
            meas = pl.measure()
            proc = meas.get("process", {})
            for role, (dev, _) in DEMO[name][1].items():
                m = dict(meas[role])
                if "flow_sp_m3s" in proc:
                    m["process_sp"] = proc["flow_sp_m3s"]
                q = {}
                if m.get("analyzer_blowback"):
                    q["nox_out_mg_nm3"] = 1  # the analyzer's status input: uncertain
                self.links[dev].send(m, q)
            for role, (dev, _) in DEMO[name][1].items():
                r = self.links[dev].receive()
                if r is not None:
                    for cmd, v in r[0].items():
                        pl.actuate(role, cmd, v)
                    self.applied.setdefault(name, {})[role] = r[0]

    def step_plants(self, t_to):
        for name in self.plant_names:
            pl = self.plants[name]
            dt = pl.sc.step_s
            while self.t_plant_of[name] + dt <= t_to + 1e-9:
                t = self.t_plant_of[name]
                pl.step(t, dt)
                truth = pl.truth()
                self.kpi[name].add(t, dt, truth, self.applied.get(name, {}))
                self.t_plant_of[name] = t + dt
                if int(t) % 60 == 0:
                    self._trace(name, t + dt, truth)

    def _trace(self, name, t, truth):
        from hil_tests.sim import trace_row
        self.trace[name].append(trace_row(name, t, truth, self.plants[name].cmd))

    def service_status(self):
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return None

    def run(self, progress=None, every_s=1.0):
        """Run the plant hours; progress(bench, status) about every every_s of wall time."""
        self.begin()
        self.advance(self.hours * 3600.0, progress, every_s)
        self.wall_s = time.monotonic() - self.wall0
        status = self.stop_service()
        return self.results(status)

    def begin(self):
        """Hold the plant at t = 0 until the epoch, then let it run."""
        self.t_plant_of = {n: 0.0 for n in self.plant_names}
        while time.time() < self.epoch:
            self.exchange()
            time.sleep(0.02)
        self.wall0 = time.monotonic()

    def advance(self, t_end, progress=None, every_s=1.0, check_service=True):
        """Step plants and link until plant time t_end (seconds)."""
        t_prog = time.monotonic()
        while True:
            if check_service and self.service.poll() is not None:
                raise RuntimeError("service exited with %s; see %s:\n%s" % (
                    self.service.returncode, self.log_path, self.log_path.read_text()[-2000:]))
            t = min(t_end, (time.time() - self.epoch) * self.speedup)
            self.step_plants(t)
            self.t_plant = t
            self.exchange()
            if progress is not None and time.monotonic() - t_prog >= every_s:
                progress(self, self.service_status())
                t_prog = time.monotonic()
            if t >= t_end:
                return
            time.sleep(0.02)

    def kill_service(self):
        """kill -9: no goodbye, no state save, no historian flush."""
        self.service.kill()
        self.service.wait()

    def start_service(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        if getattr(self, "_log", None) is None:
            self._log = open(self.log_path, "a")
        self.service = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "run", "-c", str(self.config_path),
             "--json-status", str(self.status_path)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def stop_service(self):
        status = None
        if self.service is not None and self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            try:
                self.service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()
            status = self.service_status()
        return status

    def results(self, status):
        from controller.historian import latest_kpis
        res = {"plant_hours": self.hours, "speedup": self.speedup,
               "wall_s": round(getattr(self, "wall_s", 0.0), 2), "plants": {}}
        for name in self.plant_names:
            r = {"scenario": self.scenarios[name]}
            r.update(self.kpi[name].result())
            res["plants"][name] = r
        res["service"] = status
        try:
            res["service_kpis"] = latest_kpis(self.dir / "history.db")
        except Exception as e:  # the historian is the service's: report, do not hide
            res["service_kpis"] = {"error": str(e)}
        return res

    # ---- teardown -------------------------------------------------------------------------
    def close(self):
        try:
            self.stop_service()
        finally:
            if getattr(self, "_log", None):
                self._log.close()
            for name, d in self.devices.items():
                out = d.stop()
                try:  # kept for post-mortems
                    (self.dir / ("device-%s.log" % name)).write_text(d.banner + "\n" + out)
                except OSError:
                    pass
            for l in self.links.values():
                l.close()
            for g in self.gateways.values():
                g.close()
            for l in self.lines.values():
                l.close()
            if self._tmp is not None:
                self._tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
