"""The rig the HMI tests share (no tests here): the host service on the
in-process fake line (hil_tests/fakeline.py) with its historian and the HMI
on a free loopback port, the fake drive's physics stepped by a thread, and
users of each role in a users file. Started and stopped by the tests'
fixtures; stop() runs even when a test fails."""

import asyncio
import http.cookiejar
import json
import textwrap
import threading
import time
import urllib.error
import urllib.request

from controller.config import load_config
from controller.north.users import add_user
from hil_tests.fakeline import FakeBus, FakeDevice

USERS = {"vic": ("viewer", "viewer-pass"), "olga": ("operator", "operator-pass"),
         "erik": ("engineer", "engineer-pass")}

PLANT = textwrap.dedent("""
    [service]
    name = "hmi-test"
    state_dir = "state"
    [lines.l1]
    kind = "tcp"
    host = "127.0.0.1"
    [devices.fan1]
    line = "l1"
    unit = 1
    profile = "motor"
    [groups.process]
    period_ms = 100
    [loops.fan]
    plant = "fan"
    group = "process"
    devices = { drive = "fan1" }
    process = { flow_sp_m3s = 30.0, flow_design_m3s = 50.0 }
    params = { period_s = 0.1 }
    [historian]
    path = "history.db"
    sample_s = 0.5
    [[alarms]]
    id = "fan1.speed_hi"
    kind = "limit"
    point = "fan1.speed_actual_pct"
    hi = 95.0
    deadband = 1.0
    priority = 3
    text = "fan speed high"
    [hmi]
    listen = "127.0.0.1:0"
    users = "users.toml"
    baseline_kw = 100.0
    """)


class Rig:
    def __init__(self, tmp, extra="", hmi=True, port=0):
        from controller.runtime.service import Service, build_lines
        self.tmp = tmp
        for name, (role, pw) in USERS.items():
            add_user(tmp / "users.toml", name, role, pw)
        text = PLANT.replace("127.0.0.1:0", "127.0.0.1:%d" % port) + extra
        if not hmi:
            text = text.split("[hmi]")[0]
        (tmp / "plant.toml").write_text(text)
        self.cfg = load_config(tmp / "plant.toml")
        self.bus = FakeBus([FakeDevice("motor", 1)], latency_s=0.001)
        self.dev = self.bus.devices[1]
        self.svc = Service(self.cfg, live=False,
                           lines=build_lines(self.cfg, None, client_factory=self.bus.client))
        self._stop = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.status = None
        self._threads = [threading.Thread(target=self._physics, daemon=True),
                         threading.Thread(target=self._serve, daemon=True)]

    def _physics(self):
        while not self._stop.is_set():
            self.bus.advance(0.05)
            time.sleep(0.05)

    def _serve(self):
        self.status = self.loop.run_until_complete(self.svc.run(900.0))

    def start(self):
        for t in self._threads:
            t.start()
        self.wait(lambda: self.svc.north or not self._threads[1].is_alive(), "HMI never started")
        assert self.svc.north, "the service stopped: %s" % (self.status,)
        self.hmi = self.svc.north[0]
        self.url = self.hmi.url
        self.wait(lambda: self.svc.devices["fan1"].polls > 3 and self.hmi.frame.get("points"),
                  "no polls reached the HMI")
        return self

    def stop(self):
        self._stop.set()
        if self._threads[1].is_alive():
            self.loop.call_soon_threadsafe(self.svc.stop)
            self._threads[1].join(60)
        self._threads[0].join(5)

    @staticmethod
    def wait(cond, what, timeout_s=60.0):
        t_end = time.monotonic() + timeout_s
        while time.monotonic() < t_end:
            v = cond()
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError("timed out after %g s: %s" % (timeout_s, what))

    def set_quality(self, point, q):
        """The fake drive's NE43 quality slot of a measured point (a signal fault)."""
        k = self.svc.devices["fan1"].qslot[point]
        reg = "quality_%d" % (k // 8)
        w = int(self.dev.get(reg)) & ~(3 << (2 * (k % 8)))
        self.dev.set(reg, w | (q << (2 * (k % 8))))


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A plain HTTP client with a cookie jar (what a script would use)."""

    def __init__(self, url):
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = None

    def req(self, method, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        h = {"Content-Type": "application/json"} if data is not None and raw is None else {}
        h.update(headers or {})
        r = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            with self.op.open(r, timeout=30) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def json(self, method, path, body=None, csrf=True, **kw):
        h = {"X-CSRF-Token": self.csrf} if csrf and self.csrf else {}
        code, data, _ = self.req(method, path, body, headers=h, **kw)
        try:
            return code, json.loads(data)
        except ValueError:
            return code, data

    def login(self, user, pw=None):
        code, j = self.json("POST", "/api/login", {"user": user, "password": pw or USERS[user][1]})
        if code == 200:
            self.csrf = j["csrf"]
        return code, j
