"""The HMI on `greenedge demo --hmi` (the real firmware on the MicroPython unix
port behind a virtual RS-485 line, real Modbus RTU, the plant simulated at
60x), driven from Debian's Chromium as an operator would: the fan's values
are live; manual at 40 % reaches the drive (its speed_ref_pct holding
register, read back over Modbus by the service's poll, and the speed
feedback), and back in auto the loop moves the reference again. The demo is
started as a user starts it and stopped (SIGINT to its process group) in the
fixture's teardown."""

import os
import signal
import subprocess
import sys
import time

import pytest

from controller.north.users import add_user
from tests.test_hmi_browser import Browser, pw, shots  # noqa: F401  (pw, shots: fixtures)
from tests.test_hmi_support import USERS, Client, free_port


class Demo:
    def __init__(self, tmp):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        add_user(tmp / "users.toml", "olga", "operator", USERS["olga"][1])
        self.err = open(tmp / "demo.err", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "demo", "--plants", "fan", "--minutes", "5",
             "--hmi", "127.0.0.1:%d" % self.port, "--hmi-users", str(tmp / "users.toml"),
             "--report", str(tmp / "report")],
            stdout=subprocess.DEVNULL, stderr=self.err, start_new_session=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def log(self):
        self.err.seek(0)
        return self.err.read()[-3000:]

    def wait_up(self, timeout_s=180.0):
        t_end = time.monotonic() + timeout_s
        while time.monotonic() < t_end:
            assert self.proc.poll() is None, "demo exited: %s" % self.log()
            c = Client(self.url)
            try:
                if c.login("olga")[0] == 200 and c.json("GET", "/api/live")[1].get("points"):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError("demo HMI never came up: %s" % self.log())

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)   # the demo's own group: bench, devices
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.err.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = Demo(tmp_path_factory.mktemp("hmidemo"))
    try:
        d.wait_up()
        yield d
    finally:
        d.stop()


def live(b, tag):
    return b.api("GET", "/api/live")[1]["points"].get(tag)


def test_operator_runs_the_demo_fan_from_the_browser(pw, demo, shots):  # noqa: F811
    b = Browser(pw, demo, "olga")
    try:
        p = b.page
        sel = "[data-tag='fan.speed_actual_pct'] .v"
        p.wait_for_selector(sel)
        first = p.inner_text(sel)
        p.wait_for_function("([s, v]) => document.querySelector(s).textContent !== v",
                            arg=[sel, first])
        b.shot(shots, "demo-overview")
        b.go("loops")
        assert "flow_sp_m3s (from fan.process_sp)" in p.inner_text("#fp-fan")  # read-only SP
        p.fill("#fp-fan .op-in[data-point='speed_ref_pct']", "40")
        p.click("#fp-fan .to-manual")
        p.click("#confirm-yes")
        p.wait_for_selector("#msg.accepted")

        def at(tag, v, tol, ok=("good",)):
            pv = live(b, tag)
            return pv is not None and pv[1] in ok and abs(pv[0] - v) <= tol
        # the drive's own register, read back over Modbus RTU, then its speed
        wait(lambda: at("fan.speed_ref_pct", 40.0, 0.05), "speed_ref_pct never 40 %", demo)
        # (the demo's speed feedback carries the firmware's quality flag for the drive's
        # analog feedback, whatever it is; a fresh reading is what counts here)
        wait(lambda: at("fan.speed_actual_pct", 40.0, 1.0, ("good", "uncertain", "bad",
                                                               "not wired")),
             "speed never near 40 %", demo)
        p.wait_for_function("""() => Math.abs(parseFloat(document.querySelector(
            "#fp-fan [data-tag='fan.speed_actual_pct'] .v").textContent) - 40) < 1""")
        b.shot(shots, "demo-loops")
        p.click("#fp-fan .to-auto")
        p.click("#confirm-yes")
        p.wait_for_selector("#msg.accepted")
        wait(lambda: not at("fan.speed_ref_pct", 40.0, 1.0), "auto never moved the ref", demo)
        p.wait_for_function("""() => document.querySelector("#fp-fan .mode").textContent
                               !== 'manual'""")
    finally:
        b.close()


def wait(cond, what, demo, timeout_s=90.0):
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        if cond():
            return
        assert demo.proc.poll() is None, "demo exited: %s" % demo.log()
        time.sleep(0.25)
    raise AssertionError("%s (%g s)" % (what, timeout_s))
