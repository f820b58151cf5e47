"""The host service against real firmware on timed virtual lines.

A dead device on a shared line costs the others at most its backoff share; a
device that comes back is re-armed; the service over a TCP gateway and over a
Modbus TCP server (pymodbus) reads the same values; kill -9 loses no committed
data, and a restart resumes counters without moving the outputs.
"""

import asyncio
import sqlite3
import threading
import time

import pytest

from controller.config import load_config
from controller.runtime.service import Service
from firmware import regmap
from hil_tests.devices import DeviceProcess
from hil_tests.gateway import Gateway
from hil_tests.vline import VirtualLine


def config(tmp_path, line_block, devices, loops=""):
    text = "[service]\nname = 'test'\nstale_s = 2.0\n\n" + line_block + "\n"
    for name, unit, settings in devices:
        text += ("[devices.%s]\nline = 'l1'\nunit = %d\nprofile = 'motor'\nsettings = { %s }\n\n"
                 % (name, unit, settings))
    text += "[groups.process]\nperiod_ms = 1000\n\n" + loops
    text += "[historian]\npath = 'h.db'\ncommit_s = 0.2\nsample_s = 0.5\n"
    p = tmp_path / "plant.toml"
    p.write_text(text)
    return load_config(p)


class Running:
    """A Service on its own event loop thread, stopped on exit."""

    def __init__(self, cfg):
        self.svc = Service(cfg, live=False)
        self.loop = asyncio.new_event_loop()
        self.result = None
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.result = self.loop.run_until_complete(self.svc.run())

    def __enter__(self):
        self.t.start()
        return self.svc

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.svc.stop)
        self.t.join(timeout=20)


def wait_for(pred, timeout_s, step=0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def rtu_line(port):
    return ("[lines.l1]\nkind = 'rtu'\nport = '%s'\nbaud = 115200\nparity = 'N'\n"
            "stopbits = 2\n" % port)


def test_dead_device_costs_the_line_at_most_its_backoff_share(tmp_path):
    with VirtualLine(4, baud=115200) as line:
        devs = [DeviceProcess("motor", u, line.ports[u]) for u in (1, 2, 3)]
        try:
            cfg = config(tmp_path, rtu_line(line.ports[0]),
                         [("m%d" % u, u, "") for u in (1, 2, 3)])
            with Running(cfg) as svc:
                assert wait_for(lambda: all(d.up for d in svc.devices.values()), 10)
                time.sleep(1.0)
                p0 = {n: d.polls for n, d in svc.devices.items()}
                time.sleep(4.0)
                healthy = {n: (d.polls - p0[n]) / 4.0 for n, d in svc.devices.items()}
                line.set(muted=[3])  # m3 stops answering
                assert wait_for(lambda: not svc.devices["m3"].up, 5)
                to0 = svc.lines["l1"].stats.timeouts
                p1 = {n: d.polls for n, d in svc.devices.items()}
                time.sleep(8.0)
                dead = {n: (d.polls - p1[n]) / 8.0 for n, d in svc.devices.items()}
                timeouts = svc.lines["l1"].stats.timeouts - to0
                # Backoff 1, 2, 4 s...: within 8 s at most 4 probes, each one timeout.
                assert timeouts <= 4, timeouts
                for n in ("m1", "m2"):
                    # Its share freed, each healthy device is polled at least as often.
                    assert dead[n] >= 0.95 * healthy[n], (n, healthy, dead)
                line.set(muted=[])
                assert wait_for(lambda: svc.devices["m3"].up, 40)
        finally:
            for d in devs:
                d.stop()


FAN_LOOP = """
[loops.fan]
plant = "fan"
group = "process"
devices = { drive = "%s" }
process = { flow_sp_m3s = 25.0, flow_design_m3s = 50.0 }
"""


def test_device_back_from_comm_loss_is_rearmed(tmp_path):
    with VirtualLine(2, baud=115200) as line:
        with DeviceProcess("motor", 1, line.ports[1]):
            cfg = config(tmp_path, rtu_line(line.ports[0]),
                         [("m1", 1, "comm_loss_timeout_s = 2.5")], FAN_LOOP % "m1")
            with Running(cfg) as svc:
                d = svc.devices["m1"]
                armed = lambda: d.up and int(d.values.get("status", 0)) & regmap.ST_ARMED  # noqa: E731
                assert wait_for(armed, 10)
                trips = d.values["comm_loss_trips"]
                # The device hears nothing valid, so no heartbeat either, for > its
                # 2.5 s (at least two runs of its 1 s loop): safe state.
                line.set(muted=[1])
                time.sleep(4.0)
                line.set(muted=[])
                assert wait_for(lambda: d.values.get("comm_loss_trips", 0) > trips, 20)
                assert wait_for(armed, 20)  # the service re-armed it
                assert svc.loops["fan"].mode == "auto"
            db = sqlite3.connect(str(tmp_path / "h.db"))
            arms = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'arm'").fetchone()[0]
            assert arms >= 2


def test_settings_reach_a_device_before_any_loop_arms_it(tmp_path):
    """A device is given its settings when it is seen, not only when its loop
    arms it: its safe state is the configured one from the start (a drive found
    running holds its duty instead of the firmware's generic safe speed)."""
    with VirtualLine(2, baud=115200) as line:
        with DeviceProcess("motor", 1, line.ports[1]):
            cfg = config(tmp_path, rtu_line(line.ports[0]),
                         [("m1", 1, "speed_safe_pct = 67.5, comm_loss_timeout_s = 4.0")])
            with Running(cfg) as svc:
                d = svc.devices["m1"]
                # Disarmed (no loop), in its safe state, driving the configured speed.
                assert wait_for(lambda: d.slow_done and d.values.get("speed_safe_pct") == 67.5
                                and d.values.get("speed_actual_pct") == 67.5, 10), d.values
                assert not int(d.values["status"]) & regmap.ST_ARMED
                assert d.values["comm_loss_timeout_s"] == 4.0


def test_service_through_rtu_gateway_and_modbus_tcp_reads_the_device(tmp_path):
    with VirtualLine(2, baud=115200) as line:
        with DeviceProcess("motor", 7, line.ports[1]):
            gw = Gateway(line.ports[0])
            try:
                block = ("[lines.l1]\nkind = 'rtu_tcp'\nhost = '%s'\nport = %d\nbaud = 115200\n"
                         % gw.address)
                cfg = config(tmp_path, block, [("m7", 7, "")])
                with Running(cfg) as svc:
                    d = svc.devices["m7"]
                    assert wait_for(lambda: d.up and d.slow_done, 10)
                    assert d.values["profile_id"] == regmap.PROFILE_IDS["motor"]
                    assert d.values["max_speed_pct"] == 100.0
                    st = svc.lines["l1"].stats.snapshot()
                    assert st["tx"] > 10 and st["utilisation"] > 0
            finally:
                gw.close()


def test_modbus_tcp_server_peer(tmp_path):
    """A Modbus TCP device (here pymodbus' own server with a motor map image)."""
    from hil_tests.tcpserver import serve_tcp
    with serve_tcp("motor", 9) as (host, port):  # units 1..9
        block = "[lines.l1]\nkind = 'tcp'\nhost = '%s'\nport = %d\n" % (host, port)
        cfg = config(tmp_path, block, [("m9", 9, "")])
        with Running(cfg) as svc:
            d = svc.devices["m9"]
            assert wait_for(lambda: d.up and d.slow_done, 10)
            assert d.values["map_version"] == regmap.MAP_VERSION
            assert svc.status()["lines"]["l1"]["utilisation"] is None  # no wire to fill


def test_manual_mode_is_bumpless_both_ways(tmp_path):
    import subprocess
    import sys
    with VirtualLine(2, baud=115200) as line:
        with DeviceProcess("motor", 1, line.ports[1]):
            cfg = config(tmp_path, rtu_line(line.ports[0]), [("m1", 1, "")], FAN_LOOP % "m1")
            with Running(cfg) as svc:
                d = svc.devices["m1"]
                r = svc.loops["fan"]
                assert wait_for(lambda: d.up and int(d.values.get("status", 0)) & regmap.ST_ARMED, 10)
                auto_speed = r.cmds["drive"]["speed_ref_pct"]

                def mode(*args):
                    return subprocess.run([sys.executable, "-m", "controller.cli", "mode", "-c",
                                           str(cfg.path), "fan", *args],
                                          capture_output=True, text=True, timeout=60)
                bad = mode("manual", "--set", "drive.speed_ref_pct=150")
                assert bad.returncode == 2 and "outside 0..100" in bad.stderr
                ok = mode("manual", "--set", "drive.speed_ref_pct=35")
                assert ok.returncode == 0, ok.stderr
                assert wait_for(lambda: r.mode == "manual", 5)
                # The operator's value reaches the device; the other outputs hold.
                assert wait_for(lambda: d.values.get("speed_ref_pct") == 35.0, 10)
                assert r.cmds["drive"]["damper_cmd_pct"] == 100.0
                assert mode("auto").returncode == 0
                assert wait_for(lambda: r.mode == "auto", 5)
                time.sleep(3.0)
                # Ramping back over 60 s: after ~3 s it has moved a little, not jumped.
                now = r.cmds["drive"]["speed_ref_pct"]
                assert 35.0 < now < 35.0 + 0.2 * (auto_speed - 35.0), (now, auto_speed)
