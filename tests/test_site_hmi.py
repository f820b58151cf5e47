"""The site HMI (greenedge site --hmi, controller/site/hmi.py) against a real
site host fed by a real edge service: the fake line, --mqtt to its own local
mosquitto bridged to the site's mosquitto (TLS, ACL), real PostgreSQL read as
the reporter role (tests/test_site.py's fixtures), and a real headless
Chromium (as tests/test_hmi_browser.py). The edge's link cut (its local
broker killed) must show as stale on the overview."""

import asyncio
import shutil
import tempfile
import threading
import time

import pytest

from controller.config import load_config
from hil_tests.clock import ScaledClock
from hil_tests.fakeline import FakeBus, FakeDevice
from tests.test_hmi_browser import ARGS, CHROMIUM, T_MS, pw  # noqa: F401 (fixture)
from tests.test_hmi_support import USERS, Client
from tests.test_site import (EDGE, REPORTER_PW, SITE, SPEEDUP, WRITER_PW, LocalBroker,
                             broker, pg, until)  # noqa: F401 (fixtures)
from controller.north.users import add_user

NODE = "compressor"


@pytest.fixture(scope="module")
def rig(pg, broker, tmp_path_factory):  # noqa: F811
    from controller.north.hmi.config import hmi_table
    from controller.runtime.service import Service, build_lines
    from controller.site.cli import report_factory, writer_factory
    from controller.site.config import load_site
    from controller.site.hmi import SiteHmi
    from controller.site.host import PrimaryHost
    tmp = tmp_path_factory.mktemp("site-hmi")
    shutil.copy(broker.tmp / "ca.pem", tmp / "ca.pem")
    (tmp / "site.toml").write_text(SITE % {"mq": broker.port, "pg": pg.port,
                                           "wpw": WRITER_PW, "rpw": REPORTER_PW})
    for name, (role, pw_) in USERS.items():
        add_user(tmp / "users.toml", name, role, pw_)
    scfg = load_site(tmp / "site.toml")
    host = PrimaryHost(scfg, writer_factory(scfg)).start()
    assert host.connected.wait(20), "the site host never connected"
    (tmp / "local").mkdir()
    local = LocalBroker(tmp / "local", broker, NODE)
    local.start()
    d = tmp / NODE
    d.mkdir()
    text = (EDGE % {"node": NODE, "port": broker.port}).replace(
        "mqtts://127.0.0.1:%d" % broker.port, "mqtt://127.0.0.1:%d" % local.port)
    (d / "plant.toml").write_text(text)
    cfg = load_config(d / "plant.toml")
    bus = FakeBus([FakeDevice("motor", 1)], latency_s=0.001)
    svc = Service(cfg, live=False, historian=False, clock=ScaledClock(SPEEDUP, time.time()),
                  lines=build_lines(cfg, None, client_factory=bus.client))
    loop = asyncio.new_event_loop()

    async def run():
        async def physics():
            while True:
                bus.advance(0.05 * SPEEDUP)
                await asyncio.sleep(0.05)
        ph = asyncio.create_task(physics())
        try:
            await svc.run(600.0)
        finally:
            ph.cancel()
    th = threading.Thread(target=lambda: loop.run_until_complete(run()), daemon=True)
    th.start()
    hmi = SiteHmi(host, scfg, hmi_table(listen="127.0.0.1:0", users=tmp / "users.toml"),
                  report_factory(scfg), state_dir=tmp).start()

    class R:
        pass
    r = R()
    r.url, r.hmi, r.host, r.local, r.tmp = hmi.url, hmi, host, local, tmp
    try:
        until(lambda: host.status()["nodes"].get("plant/" + NODE, {}).get("online")
              and host.status()["nodes"]["plant/" + NODE]["devices"].get("fan1"),
              "the edge never came online at the site host", 60.0)
        yield r
    finally:
        hmi.stop()
        loop.call_soon_threadsafe(svc.stop)
        th.join(30)
        local.stop()
        host.stop()


def test_api_needs_a_session_and_is_read_only(rig):
    c = Client(rig.url)
    code, j = c.json("GET", "/api/site")
    assert code == 401, (code, j)
    code, j = c.json("GET", "/api/edges/plant/%s" % NODE)
    assert code == 401
    code, _, _ = c.req("GET", "/overview")      # followed to the login page
    assert code == 200
    assert c.login("vic", "wrong")[0] == 401
    assert c.login("erik")[0] == 200
    code, j = c.json("GET", "/api/site")
    assert code == 200
    areas = {a["area"]: a["edges"] for a in j["areas"]}
    assert [e["node"] for e in areas["Compressor room"]] == [NODE]
    assert areas["Compressor room"][0]["state"] in ("online", "stale")
    # a state-changing route: no CSRF token -> 403 CSRF; with it -> 403 read-only
    code, j = c.json("POST", "/api/edges/plant/%s/fan1/cmd" % NODE, {"v": 1}, csrf=False)
    assert code == 403 and "CSRF" in j["error"], j
    code, j = c.json("POST", "/api/edges/plant/%s/fan1/cmd" % NODE, {"v": 1})
    assert code == 403 and "read-only" in j["error"], j
    code, j = c.json("GET", "/api/edges/plant/nosuch")
    assert code == 404
    # an edge's values and one metric's trend, from PostgreSQL as the reporter
    code, j = c.json("GET", "/api/edges/plant/%s" % NODE)
    assert code == 200
    fan = [v for v in j["values"] if v["device"] == "fan1" and isinstance(v["value"], float)]
    assert fan, j
    m = fan[0]["metric"]
    code, t = c.json("GET", "/api/trend?group=plant&node=%s&device=fan1&metric=%s&range=1h"
                     % (NODE, m))
    assert code == 200 and len(t["points"]) >= 1, t
    assert t["points"][-1][0] >= t["points"][0][0]
    assert c.json("GET", "/api/trend?node=x&metric=y&range=2y")[0] == 400
    assert Client(rig.url).json("GET", "/api/trend?node=x&metric=y")[0] == 401


def test_browser_overview_live_values_and_stale(rig, pw):  # noqa: F811
    d = tempfile.mkdtemp(prefix="greenedge-chromium-")
    ctx = pw.chromium.launch_persistent_context(d, executable_path=CHROMIUM, args=ARGS,
                                                headless=True)
    try:
        p = ctx.pages[0] if ctx.pages else ctx.new_page()
        p.set_default_timeout(T_MS)
        p.goto(rig.url + "/overview")
        p.wait_for_url("**/login")
        p.fill("#user", "vic")
        p.fill("#password", USERS["vic"][1])
        p.click("#login-btn")
        p.wait_for_url("**/overview")
        p.wait_for_selector("body[data-ready='1']")
        area = p.locator("section.area[data-area='Compressor room']")
        area.wait_for()
        assert area.locator("tr.edge td.state").first.inner_text() == "online"
        # drill into the edge: its values, live
        p.click("a[href^='/edge?g=plant&n=%s']" % NODE)
        p.wait_for_url("**/edge?**")
        p.wait_for_selector("tr.value")
        ages = p.locator("tr.value[data-tag^='fan1/'] td:nth-child(5)")
        cell = p.locator("tr.value[data-tag^='fan1/'] td.v")
        first = cell.all_inner_texts()
        assert first and ages.count() == len(first)
        p.wait_for_function("""(first) => {
            const now = [...document.querySelectorAll("tr.value[data-tag^='fan1/'] td.v")]
                .map(e => e.textContent);
            return now.length && now.join("|") !== first.join("|"); }""", arg=first,
            timeout=60000)
        # the uplink cut (the edge's local broker killed): stale on the overview
        rig.local.proc.kill()
        rig.local.proc.wait(10)
        p.goto(rig.url + "/overview")
        p.wait_for_selector("section.area[data-area='Compressor room'] tr.edge.state-stale",
                            timeout=60000)
        assert area.locator("tr.edge td.state").first.inner_text() == "stale"
    finally:
        ctx.close()
        shutil.rmtree(d, ignore_errors=True)
        rig.local.start()


def test_cli_refuses_an_unsafe_or_userless_site_hmi(rig):
    """Checked before the host starts: nothing connects, the reason is named."""
    import subprocess
    import sys
    from tests.test_site import ROOT
    base = [sys.executable, "-m", "controller.cli", "site", "-c", str(rig.tmp / "site.toml"),
            "--duration", "1"]
    for extra, why in ((["--hmi", "0.0.0.0:18445", "--hmi-users", str(rig.tmp / "users.toml")],
                        "without TLS"),
                       (["--hmi", "127.0.0.1:18445"], "needs a users file")):
        r = subprocess.run(base + extra, cwd=str(ROOT), capture_output=True, text=True,
                           timeout=120)
        assert r.returncode != 0 and why in r.stderr, (r.returncode, r.stderr)
        assert "site HMI on" not in r.stderr
