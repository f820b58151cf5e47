"""Issue 14's minor faults, each as a plant engineer would see it: a loop
switched back from manual, an unplugged USB adapter, a `greenedge device`
stopped or left without its tty, and the systemd unit's writable paths."""

import copy

import pytest

from tests.test_runtime_tables import Rig


# ---- manual -> auto: the PI starts from the present output (tracking) --------

def _spy(strategy):
    """The strategy's own commands per run (before the transfer ramp blends them)."""
    runs, run = [], strategy.run

    def spy(t_s, snap):
        out = run(t_s, snap)
        runs.append(copy.deepcopy(out))
        return out
    strategy.run = spy
    return runs


def test_manual_to_auto_continues_from_the_manual_output(tmp_path):
    rig = Rig(tmp_path)
    try:
        dev = rig.bus.devices[1]
        runner = rig.svc.loops["fan"]
        rig.step(n=30)
        auto_ref = dev.get("speed_ref_pct")
        assert 50.0 < auto_ref < 70.0                  # 30 of 50 m3/s design: ~60 %
        # The operator takes the fan over and drives it hard for 20 s.
        assert rig.svc.gate.submit("hmi:bob", "operator", "mode", "fan", mode="manual",
                                   outputs={"drive": {"speed_ref_pct": 90.0}}).accepted
        rig.step(n=20)
        assert dev.get("speed_ref_pct") == pytest.approx(90.0)
        runs = _spy(runner.strategy)
        assert rig.svc.gate.submit("hmi:bob", "operator", "mode", "fan", mode="auto").accepted
        rig.step(n=6)
        assert runner.mode == "auto"
        # The device's first auto output is the manual one ...
        speeds = [r["drive"]["speed_ref_pct"] for r in runs]
        # ... and the strategy itself continues from it: every run after the
        # first moves the speed by at most the PI's step for the present error
        # (kp 20 %/design x 0.3 of design + ki x dt: < 2 % a second), towards
        # the set point; with a stale integral it asked for ~54 % at once.
        prev = 90.0
        for s in speeds[1:]:
            assert abs(s - prev) < 2.0, speeds
            assert s <= prev + 1e-9, speeds           # flow is above the set point: down
            prev = s
        assert speeds[-1] > 80.0, speeds
    finally:
        rig.close()


def test_a_pump_the_operator_stopped_in_manual_is_not_a_trip_back_in_auto():
    """FGD pump staging: the operator stops a running pump in manual; back in
    auto that pump is not taken for tripped (skipped for 30 min while another
    one is started): the strategy asks for it again like any other."""
    import random
    from controller.config.schema import LoopCfg
    from controller.runtime import modes
    runner = modes.LoopRunner(LoopCfg("fgd", "fgd", "optimized", "g", {"fgd": "fgd1"}, {}))
    rng = random.Random(1)
    running = [0] * 5

    def snap():
        u = rng.uniform
        return {"fgd": {"o2_pct": 6.0 + u(-.1, .1), "so2_in_mg_nm3": 1500 + u(-20, 20),
                        "ph": 5.5 + u(-.01, .01), "flue_gas_flow_nm3h": 4e5 + u(-1e3, 1e3),
                        "so2_out_mg_nm3": 20 + u(-1, 1), "so2_analyzer_fault": 0,
                        **{"pump%d_running" % (i + 1): running[i] for i in range(5)}},
                "process": {}}
    t = 0.0
    for _ in range(200):                      # auto: the pumps run as commanded
        t += 1.0
        runner.cmds = {"fgd": runner.strategy.run(t, snap())["fgd"]}
        running = [int(runner.cmds["fgd"]["pump%d_run" % (i + 1)]) for i in range(5)]
    on = [i for i in range(5) if running[i]]
    assert 1 <= len(on) < 5
    stopped = on[0]                           # manual: the operator stops one for 10 min
    runner.manual = {"fgd": {"pump%d_run" % (stopped + 1): 0}}
    runner.cmds = modes.manual_commands(runner)
    running[stopped] = 0
    t += 600.0
    runner.manual = None                      # back to auto, as the cycle does it
    modes.start_transfer(runner, t)
    out = modes.ramp_from_manual(runner, runner.strategy.run(t, snap()), t, lambda r: None)
    assert out["fgd"]["pump%d_run" % (stopped + 1)] == 1
    assert all(u <= t for u in runner.strategy.unavailable_until), "taken for tripped"


def _track_rows():
    from controller.loops import STRATEGIES, strategy_class
    return [(plant, name) for plant in STRATEGIES for name in STRATEGIES[plant]
            if strategy_class(plant, name).TRACK]


@pytest.mark.parametrize("plant,name", _track_rows())
def test_every_tracked_output_is_a_pi_output_of_the_role(plant, name):
    """Every strategy's TRACK table names a writable analog point of the role's
    profile and a PI the strategy has; a tracked output moves that PI's
    integral by the output's difference over its gain."""
    from controller.loops import ROLES, strategy_class
    from controller.registers import point_map
    from hil_tests.plants import plant_class
    from hil_tests.scenario import load_scenario
    strat = strategy_class(plant, name)()
    # Tracking happens on a run back in auto: the strategy has seen the plant
    # (a ratio strategy's gain is the present inlet x flow).
    cls = plant_class(plant)
    pl = cls(plant, load_scenario("%s_standard" % plant, cls.SPEC, 0.1, None, plant),
             options=strat.plant_options)
    strat.run(0.0, pl.measure())
    for (role, point), (attr, gain) in strat.TRACK.items():
        p = point_map(ROLES[plant][role])[point]
        assert p.access == "rw" and p.type != "bit"
        before = strat.pi_integrals()[attr]
        g = float(getattr(strat, gain) if isinstance(gain, str) else gain)
        out = {role: {point: 30.0}}
        assert strat.track(out, {role: {point: 40.0}}, strat.pi_integrals()) == \
            {(role, point): pytest.approx(10.0)}
        assert out[role][point] == 40.0
        assert getattr(strat, attr).integral[0] == pytest.approx(before + 10.0 / g)


# ---- an unplugged USB adapter: devices down once, reopened, back on replug ----

def _crc(b):
    c = 0xFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
    return bytes([c & 0xFF, c >> 8])


class PtyAdapter:
    """A USB adapter with its devices behind it, on a real pty: the line opens
    `link` (a symlink to the pty, as /dev/serial/by-id/... is to /dev/ttyUSBn).
    The devices answer every read with zeros. unplug() closes the pty and
    removes the link (the kernel's view of a pulled adapter); plug() makes a
    new pty (another tty number) and points the link at it."""

    def __init__(self, link, units):
        self.link, self.units = link, set(units)
        self.master = None
        self.thread = None
        self.plug()

    def plug(self):
        import os
        import threading
        import tty
        m, s = os.openpty()
        tty.setraw(m)
        tty.setraw(s)
        self.path = os.ttyname(s)
        os.close(s)
        self.master, self.running = m, True
        os.symlink(self.path, self.link)
        self.thread = threading.Thread(target=self._serve, args=(m,), daemon=True)
        self.thread.start()

    def unplug(self):
        import os
        self.running = False
        self.thread.join(5)
        os.close(self.master)
        os.unlink(self.link)

    def _serve(self, m):
        import os
        import select
        buf = b""
        while self.running:
            if not select.select([m], [], [], 0.05)[0]:
                continue
            try:
                buf += os.read(m, 256)
            except OSError:
                continue  # nobody has the tty open just now
            while len(buf) >= 8:
                unit, fc = buf[0], buf[1]
                n = int.from_bytes(buf[4:6], "big")
                req, buf = buf[:8], buf[8:]
                if _crc(req[:6]) != req[6:] or unit not in self.units or fc not in (1, 2, 3, 4):
                    buf = b""  # not a read for us: resynchronise
                    continue
                data = bytes(2 * n) if fc in (3, 4) else bytes((n + 7) // 8)
                body = bytes([unit, fc, len(data)]) + data
                os.write(m, body + _crc(body))


PTY_PLANT = """
[lines.rs485]
kind = "rtu"
port = "{port}"
baud = 115200
parity = "N"
stopbits = 2
[devices.fan1]
line = "rs485"
unit = 1
profile = "motor"
[devices.pump1]
line = "rs485"
unit = 2
profile = "motor"
[groups.g]
period_ms = 1000
"""


def _wait(cond, timeout_s, what):
    import time
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("not within %g s: %s" % (timeout_s, what))
        time.sleep(0.05)


def test_an_unplugged_adapter_marks_its_devices_down_once_and_recovers_on_replug(tmp_path):
    import asyncio
    import threading
    import time
    from controller.config import load_config
    from controller.runtime.service import build_lines

    by_id = tmp_path / "usb-FTDI_FT232R_USB_UART_A10K3XYZ-if00-port0"
    adapter = PtyAdapter(str(by_id), units=(1, 2))
    (tmp_path / "plant.toml").write_text(PTY_PLANT.format(port=by_id))
    cfg = load_config(tmp_path / "plant.toml")
    assert cfg.lines["rs485"].port == str(by_id)        # kept as written, not resolved
    events = []
    (line,) = build_lines(cfg, lambda *e: events.append(e)).values()
    devs = {d.name: d for d in line.devices}
    loop = asyncio.new_event_loop()
    task = loop.create_task(line.run())
    runner = threading.Thread(target=loop.run_until_complete, args=(task,), daemon=True)
    runner.start()
    try:
        _wait(lambda: all(d.up for d in devs.values()), 20, "both devices up")
        before = len(events)
        adapter.unplug()
        _wait(lambda: not any(d.up for d in devs.values()), 20, "devices down after unplug")
        _wait(lambda: line.stats.reopens >= 2, 20, "reopen attempts")
        # While it stays unplugged: one event for the line (not one per
        # device, nor one per try), and the reopening sleeps between tries.
        cpu0, tries0 = time.process_time(), line.stats.reopens
        time.sleep(3.0)
        cpu = time.process_time() - cpu0
        kinds = [e[0] for e in events[before:]]
        assert kinds == ["line_down"], events[before:]
        assert "fan1" in events[before][2] and "pump1" in events[before][2]
        assert all(d.down_events == 1 for d in devs.values())
        # The backoff has reached 2 s (0.5, 1, 2 ... 5 s): at most 2 tries in
        # 3 s, whatever the load (a slow machine makes fewer, not more).
        assert line.stats.reopens - tries0 <= 2
        assert cpu < 0.5, "the line spun: %.2f CPU-s in 3 s unplugged" % cpu
        # Replugged: the same by-id path, a new tty behind it.
        adapter.plug()
        _wait(lambda: all(d.up for d in devs.values()), 20, "devices up after replug")
        kinds = [e[0] for e in events[before:]]
        assert kinds.count("line_down") == 1 and kinds.count("line_up") == 1, events[before:]
        assert sorted(e[1] for e in events[before:] if e[0] == "device_up") == ["fan1", "pump1"]
        assert all(d.up_events == 2 for d in devs.values())
        polls = devs["fan1"].polls
        _wait(lambda: devs["fan1"].polls > polls + 5, 20, "polling goes on")
    finally:
        loop.call_soon_threadsafe(line.stop)
        runner.join(10)
        if adapter.running:
            adapter.unplug()


@pytest.mark.parametrize("port,ok", [("/dev/serial/by-id/usb-FTDI_FT232R-if00-port0", True),
                                     ("/dev/ttyUSB0", True), ("ttyUSB0", False), ("", False)])
def test_a_line_port_is_an_absolute_tty_path(tmp_path, port, ok):
    from controller.config import load_config
    from controller.config.toml import ConfigError
    (tmp_path / "plant.toml").write_text(PTY_PLANT.format(port=port))
    if ok:
        assert load_config(tmp_path / "plant.toml").lines["rs485"].port == port
    else:
        with pytest.raises(ConfigError, match=r"lines\.rs485\.port.*absolute path"):
            load_config(tmp_path / "plant.toml")


# ---- `greenedge device`: signals reach the firmware, a dead tty is not spun on --

def _stat(pid):
    """(ppid, state, own CPU s, reaped children's CPU s) from /proc, or None."""
    import os
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return (int(rest[1]), rest[0], (int(rest[11]) + int(rest[12])) / tick,
            (int(rest[13]) + int(rest[14])) / tick)


def _children(pid):
    import os
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None and st[0] == pid:
                out.append(int(name))
    return out


def _alive(pid):
    st = _stat(pid)
    return st is not None and st[1] != "Z"


def _tree_cpu_s(pid):
    """CPU seconds used by pid, its live children and the children it reaped."""
    st = _stat(pid)
    return st[2] + st[3] + sum((_stat(c) or (0, "", 0.0, 0.0))[2] for c in _children(pid))


class DeviceCmd:
    """`greenedge device` as an operator starts it, on a pty behind a link."""

    def __init__(self, tmp_path, *extra):
        import os
        import subprocess
        import sys
        import threading
        import tty
        self.link = str(tmp_path / "ttyDEV")
        self.master = None
        self.plug()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "device", "--profile", "motor",
             "--unit", "1", "--port", self.link] + list(extra),
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.out = []
        self.seen = set()
        threading.Thread(target=lambda: [self.out.append(ln) for ln in self.proc.stdout],
                         daemon=True).start()

    def plug(self):
        import os
        import tty
        m, s = os.openpty()
        tty.setraw(m)
        tty.setraw(s)
        os.symlink(os.ttyname(s), self.link)
        os.close(s)
        self.master = m

    def unplug(self):
        import os
        os.close(self.master)
        os.unlink(self.link)
        self.master = None

    def ready(self):
        return sum("ready" in ln for ln in self.out)

    def firmware(self):
        kids = [c for c in _children(self.proc.pid) if _alive(c)]
        self.seen.update(kids)
        return kids[0] if kids else None

    def close(self):
        import os
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for c in self.seen:  # never leave one behind, even when the test failed
            if _alive(c):
                os.kill(c, 9)
        if self.master is not None:
            self.unplug()


def test_greenedge_device_stopped_by_sigterm_stops_its_firmware(tmp_path):
    import signal
    dev = DeviceCmd(tmp_path)
    try:
        _wait(lambda: dev.ready() == 1, 60, "device ready")
        fw = dev.firmware()
        assert fw is not None and _alive(fw)
        dev.proc.send_signal(signal.SIGTERM)
        assert dev.proc.wait(15) == 128 + signal.SIGTERM
        _wait(lambda: not _alive(fw), 10, "the MicroPython child gone with its parent")
    finally:
        dev.close()


def test_greenedge_device_killed_hard_takes_its_firmware_along(tmp_path):
    import signal
    dev = DeviceCmd(tmp_path)
    try:
        _wait(lambda: dev.ready() == 1, 60, "device ready")
        fw = dev.firmware()
        dev.proc.send_signal(signal.SIGKILL)   # no handler runs: the kernel's parent-death signal
        dev.proc.wait(15)
        _wait(lambda: not _alive(fw), 10, "the MicroPython child gone with its killed parent")
    finally:
        dev.close()


def test_greenedge_device_waits_for_a_hung_up_tty_without_spinning(tmp_path):
    import time
    dev = DeviceCmd(tmp_path)
    try:
        _wait(lambda: dev.ready() == 1, 60, "device ready")
        fw = dev.firmware()
        cpu0 = _tree_cpu_s(dev.proc.pid)
        dev.unplug()                       # the adapter pulled: the tty hangs up and goes
        time.sleep(2.5)
        used = _tree_cpu_s(dev.proc.pid) - cpu0
        assert not _alive(fw), "the firmware still runs on a dead tty"
        assert dev.proc.poll() is None     # on_hangup wait (the default): still there
        assert used < 0.3, "%.2f CPU-s in 2.5 s with the tty gone" % used
        dev.plug()                         # the same path comes back
        _wait(lambda: dev.ready() == 2, 60, "device restarted on the returned tty")
        assert dev.firmware() is not None and dev.proc.poll() is None
    finally:
        dev.close()


def test_greenedge_device_on_hangup_exit_exits_without_its_firmware(tmp_path):
    dev = DeviceCmd(tmp_path, "--on-hangup", "exit")
    try:
        _wait(lambda: dev.ready() == 1, 60, "device ready")
        fw = dev.firmware()
        dev.unplug()
        assert dev.proc.wait(15) == 75
        assert not _alive(fw)
    finally:
        dev.close()


# ---- systemd: every path the service writes is one the unit grants ------------

ROOT_DIR = __import__("pathlib").Path(__file__).resolve().parent.parent
UNIT = ROOT_DIR / "deploy" / "greenedge.service"


def _unit(path):
    """{section: {key: [values]}} of a systemd unit file (comments, blanks skipped)."""
    out, sec = {}, None
    for raw in path.read_text().splitlines():
        ln = raw.strip()
        if not ln or ln[0] in "#;":
            continue
        if ln.startswith("[") and ln.endswith("]"):
            sec = out.setdefault(ln[1:-1], {})
            continue
        k, _, v = ln.partition("=")
        sec.setdefault(k.strip(), []).append(v.strip())
    return out


def _granted(svc):
    """Directories the unit makes writable for its User= (with ProtectSystem=strict
    everything else is read-only to it)."""
    from pathlib import Path
    roots = {"StateDirectory": "/var/lib", "RuntimeDirectory": "/run",
             "LogsDirectory": "/var/log", "CacheDirectory": "/var/cache"}
    out = []
    for key, root in roots.items():
        for v in svc.get(key, []):
            out += [Path(root) / d for d in v.split()]
    for v in svc.get("ReadWritePaths", []):
        out += [Path(d.lstrip("-")) for d in v.split()]
    return out


def _service_writes(unit_svc, tmp_path):
    """Every path `greenedge run` writes under this unit, with the example config
    installed where ExecStart says (its relative paths resolve there)."""
    import shlex
    import shutil
    from pathlib import Path
    from controller.config import load_config
    argv = shlex.split(unit_svc["ExecStart"][0])
    assert argv[1] == "run"
    installed = Path(argv[argv.index("-c") + 1])
    copy_ = tmp_path / installed.name
    shutil.copy(ROOT_DIR / "examples" / "plant.toml", copy_)
    cfg = load_config(copy_)

    def placed(p):
        p = Path(p)
        return installed.parent / p.relative_to(tmp_path) if tmp_path in p.parents else p

    state = placed(cfg.state_dir)
    hist = placed(cfg.historian["path"])
    writes = [state / n for n in ("state.json", "state.tmp", "control.json", "control.tmp",
                                  "alarm_requests.json", "alarm_requests.tmp")]
    writes += [hist, Path(str(hist) + "-wal"), Path(str(hist) + "-shm"),
               Path(str(hist) + "-journal")]
    if "--json-status" in argv:
        status = Path(argv[argv.index("--json-status") + 1])
        writes += [status, Path(str(status) + ".tmp")]
    return writes


def test_every_path_the_service_writes_is_granted_by_its_unit(tmp_path):
    unit = _unit(UNIT)
    svc = unit["Service"]
    assert svc["User"] == ["greenedge"]
    assert svc.get("ProtectSystem") == ["strict"]   # a path outside the grants fails at once
    granted = _granted(svc)
    outside = [str(p) for p in _service_writes(svc, tmp_path)
               if not any(g == p or g in p.parents for g in granted)]
    assert not outside, "written by the service, not writable by User=greenedge: %s (granted: %s)" \
        % (", ".join(outside), ", ".join(map(str, granted)))
    from pathlib import Path
    wd = Path(svc["WorkingDirectory"][0])
    assert any(g == wd or g in wd.parents for g in granted)


def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    import shutil
    import subprocess
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed here")
    # verify checks that ExecStart's binary exists: point it at this checkout's.
    ge = shutil.which("greenedge") or shutil.which("true")
    unit = tmp_path / "greenedge.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/greenedge", ge))
    r = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "greenedge.service" not in r.stderr, r.stderr
