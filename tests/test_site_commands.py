"""Edge commands from the site HMI (POST /api/edge/<group>/<node>/command,
controller/site/hmi.py): a real site host and site mosquitto (TLS, ACL),
PostgreSQL, one edge service on the fake line behind its own local mosquitto
bridged to the site broker (tests/test_site.py's fixtures, the rig of
tests/test_site_hmi.py with the edge's [mqtt] writable = ["Loops/fan/Mode"]
and command_role = "operator"), and an observer (user ops, read-only) on the
edge's topics. The chain: the site HMI's role, its CSRF check, the site
broker's ACL for the site user, the edge's writable list and its command
gate; what the edge did shows in its next NDATA and the site's stored value."""

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
                             broker, pg, until, writer)  # noqa: F401 (fixtures)
from tests.test_site import Client as Observer
from controller.north.users import add_user

NODE = "compressor"
MODE = "Loops/fan/Mode"
WRITABLE = '\nwritable = ["%s"]\ncommand_role = "operator"\n' % MODE   # into [mqtt], the last table


@pytest.fixture(scope="module")
def rig(pg, broker, tmp_path_factory):  # noqa: F811
    from controller.north.hmi.config import hmi_table
    from controller.runtime.service import Service, build_lines
    from controller.site.cli import report_factory, writer_factory
    from controller.site.config import load_site
    from controller.site.hmi import SiteHmi
    from controller.site.host import PrimaryHost
    tmp = tmp_path_factory.mktemp("site-cmd")
    shutil.copy(broker.tmp / "ca.pem", tmp / "ca.pem")
    (tmp / "site.toml").write_text(SITE % {"mq": broker.port, "pg": pg.port,
                                           "wpw": WRITER_PW, "rpw": REPORTER_PW})
    for name, (role, pw_) in USERS.items():
        add_user(tmp / "users.toml", name, role, pw_)
    scfg = load_site(tmp / "site.toml")
    host = PrimaryHost(scfg, writer_factory(scfg)).start()
    assert host.connected.wait(20), "the site host never connected"
    obs = Observer(broker, "ops", "spBv1.0/plant/+/%s/#" % NODE)
    (tmp / "local").mkdir()
    local = LocalBroker(tmp / "local", broker, NODE)
    local.start()
    d = tmp / NODE
    d.mkdir()
    text = (EDGE % {"node": NODE, "port": broker.port}).replace(
        "mqtts://127.0.0.1:%d" % broker.port, "mqtt://127.0.0.1:%d" % local.port) + WRITABLE
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
            await svc.run(900.0)
        finally:
            ph.cancel()
    th = threading.Thread(target=lambda: loop.run_until_complete(run()), daemon=True)
    th.start()
    hmi = SiteHmi(host, scfg, hmi_table(listen="127.0.0.1:0", users=tmp / "users.toml"),
                  report_factory(scfg), state_dir=tmp).start()

    class R:
        pass
    r = R()
    r.url, r.host, r.obs, r.svc, r.pg, r.broker = hmi.url, host, obs, svc, pg, broker
    try:
        until(lambda: host.status()["nodes"].get("plant/" + NODE, {}).get("online")
              and host.status()["nodes"]["plant/" + NODE]["devices"].get("fan1")
              and site_mode(r) == "auto", "the edge never came online at the site host "
              "with its loop's mode stored", 60.0)
        yield r
    finally:
        hmi.stop()
        loop.call_soon_threadsafe(svc.stop)
        th.join(30)
        local.stop()
        host.stop()
        obs.close()


def login(rig, user):
    c = Client(rig.url)
    assert c.login(user)[0] == 200
    return c


def site_mode(rig):
    """The loop's mode as the site HMI shows it (the site's stored metric)."""
    c = getattr(rig, "_reader", None) or login(rig, "vic")
    rig._reader = c
    code, j = c.json("GET", "/api/edges/plant/%s" % NODE)
    assert code == 200, (code, j)
    return next((v["value"] for v in j["values"] if v["device"] == "" and v["metric"] == MODE),
                None)


def edge_mode(rig):
    """The loop's mode at the edge itself (its hub's loop state)."""
    return "manual" if rig.svc.hub.latest("loop").get("fan", {}).get("manual") else "auto"


def commands_seen(rig, after):
    """Every command metric (NCMD/DCMD, rebirth requests left out) the observer saw
    after message index `after`: [(kind, device, name, value)]."""
    from controller.site.host import _metric_value
    with rig.obs.lock:
        msgs = rig.obs.msgs[after:]
    return [(t.split("/")[2], (t.split("/") + [""])[4], m.name, _metric_value(m))
            for t, p in msgs if t.split("/")[2] in ("NCMD", "DCMD")
            for m in p.metrics if m.name != "Node Control/Rebirth"]


def ndata_modes(rig, after):
    with rig.obs.lock:
        msgs = rig.obs.msgs[after:]
    return [m.string_value for t, p in msgs if t.split("/")[2:4] == ["NDATA", NODE]
            for m in p.metrics if m.name == MODE]


def events(rig, kind, since):
    import datetime as dt
    with writer(rig.pg) as c:
        return [r[0] for r in c.execute(
            "SELECT detail FROM greenedge.events WHERE node = %s AND kind = %s AND time >= %s "
            "ORDER BY time", (NODE, kind, dt.datetime.fromtimestamp(since, dt.timezone.utc)))]


def back_to_auto(rig):
    if edge_mode(rig) != "auto":
        code, j = login(rig, "olga").json("POST", "/api/edge/plant/%s/command" % NODE,
                                          {"metric": MODE, "value": "auto"})
        assert code == 200, j
    until(lambda: edge_mode(rig) == "auto" and site_mode(rig) == "auto",
          "the loop never went back to auto", 60.0)


def test_viewer_is_refused_and_nothing_is_published(rig):
    back_to_auto(rig)
    t0, n0 = time.time(), len(rig.obs.msgs)
    c = login(rig, "vic")
    code, j = c.json("GET", "/api/session")
    assert j["commands"] is False and "needs operator" in j["commands_refused"], j
    code, j = c.json("POST", "/api/edge/plant/%s/command" % NODE,
                     {"metric": MODE, "value": "manual"})
    assert code == 403 and j["error"] == "role viewer may not change mode (needs operator)", j
    code, j = c.json("POST", "/api/edge/plant/%s/command" % NODE,
                     {"device": "fan1", "metric": "speed_ref_pct", "value": 40})
    assert code == 403 and "needs operator" in j["error"], j
    # a control: an engineer's command right after reaches the observer, the viewer's did not
    code, j = login(rig, "erik").json("POST", "/api/edge/plant/%s/command" % NODE,
                                      {"metric": MODE, "value": "auto"})
    assert code == 200 and j["result"] == "sent", j
    until(lambda: commands_seen(rig, n0), "the engineer's NCMD never reached the observer")
    time.sleep(1.0)
    assert commands_seen(rig, n0) == [("NCMD", "", MODE, "auto")]
    assert edge_mode(rig) == "auto"
    until(lambda: len(events(rig, "command_refused", t0)) == 2, "no command_refused events")
    assert all("hmi:vic (viewer)" in e for e in events(rig, "command_refused", t0))


def test_no_csrf_token_is_refused(rig):
    back_to_auto(rig)
    n0 = len(rig.obs.msgs)
    c = login(rig, "olga")
    code, j = c.json("POST", "/api/edge/plant/%s/command" % NODE,
                     {"metric": MODE, "value": "manual"}, csrf=False)
    assert code == 403 and "CSRF" in j["error"], j
    c.csrf, token = "x" * 43, c.csrf       # a wrong token
    code, j = c.json("POST", "/api/edge/plant/%s/command" % NODE,
                     {"metric": MODE, "value": "manual"})
    assert code == 403 and "CSRF" in j["error"], j
    c.csrf = token
    time.sleep(2.0)
    assert commands_seen(rig, n0) == []
    assert edge_mode(rig) == "auto"


def test_operator_switches_the_loop_to_manual_through_the_edge_gate(rig):
    back_to_auto(rig)
    t0, n0 = time.time(), len(rig.obs.msgs)
    gate0 = rig.svc.gate.accepted
    c = login(rig, "olga")
    code, j = c.json("POST", "/api/edge/plant/%s/command" % NODE,
                     {"metric": MODE, "value": "manual"})
    assert code == 200 and j["result"] == "sent" and j["message"] == "NCMD", j
    until(lambda: edge_mode(rig) == "manual", "the edge's loop never went to manual")
    assert rig.svc.gate.accepted == gate0 + 1
    until(lambda: "manual" in ndata_modes(rig, n0), "no NDATA with the loop in manual")
    until(lambda: site_mode(rig) == "manual", "the site never stored the loop in manual")
    assert commands_seen(rig, n0) == [("NCMD", "", MODE, "manual")]
    until(lambda: events(rig, "command", t0), "no command event at the site")
    ev = events(rig, "command", t0)
    assert len(ev) == 1 and ev[0].startswith("hmi:olga: %s = 'manual'" % MODE), ev
    back_to_auto(rig)


def test_the_edge_refuses_what_it_does_not_allow(rig):
    """Sent by the site (the operator may), refused by the edge: a device output
    not in its writable list (it would put the loop in manual), and a mode its
    gate does not know. The edge publishes no refusal: the loop stays auto."""
    back_to_auto(rig)
    node = rig.svc.north[0]
    refused0, gate_refused0 = node.commands["refused"], rig.svc.gate.refused
    n0 = len(rig.obs.msgs)
    c = login(rig, "olga")
    code, j = c.json("POST", "/api/edge/plant/%s/command" % NODE,
                     {"device": "fan1", "metric": "speed_ref_pct", "value": 40.0})
    assert code == 200 and j["result"] == "sent" and j["message"] == "DCMD", j
    until(lambda: node.commands["refused"] == refused0 + 1,
          "the edge never refused the DCMD (not in its writable list)")
    code, j = c.json("POST", "/api/edge/plant/%s/command" % NODE,
                     {"metric": MODE, "value": "sideways"})
    assert code == 200 and j["result"] == "sent", j
    until(lambda: rig.svc.gate.refused == gate_refused0 + 1,
          "the edge's gate never refused mode 'sideways'")
    assert commands_seen(rig, n0) == [("DCMD", "fan1", "speed_ref_pct", 40.0),
                                      ("NCMD", "", MODE, "sideways")]
    time.sleep(2.0)
    assert edge_mode(rig) == "auto" and site_mode(rig) == "auto"
    assert "manual" not in ndata_modes(rig, n0)
    # malformed, unknown: refused at the site, nothing sent
    for body, want in (({"metric": "", "value": 1}, 400),
                       ({"metric": MODE, "value": None}, 400),
                       ({"metric": "Node Control/Rebirth", "value": True}, 400),
                       ({"device": "fan9", "metric": "speed_ref_pct", "value": 1}, 404)):
        code, j = c.json("POST", "/api/edge/plant/%s/command" % NODE, body)
        assert code == want and j["result"] == "refused", (body, code, j)
    code, j = c.json("POST", "/api/edge/plant/nosuch/command", {"metric": MODE, "value": "auto"})
    assert code == 404, j
    time.sleep(1.0)
    assert len(commands_seen(rig, n0)) == 2


def test_site_broker_acl_drops_an_ncmd_from_another_user(rig):
    """Only the site user may write NCMD/DCMD on the site broker: the same NCMD
    from user ops (read-only there) never reaches the edge."""
    from pysparkplug import DataType, Metric, NCmd
    back_to_auto(rig)
    node = rig.svc.north[0]
    before = dict(node.commands)
    n0 = len(rig.obs.msgs)
    ms = int(time.time() * 1000)
    rig.obs.publish("spBv1.0/plant/NCMD/%s" % NODE, NCmd(timestamp=ms, metrics=(Metric(
        timestamp=ms, name=MODE, datatype=DataType.STRING, value="manual"),)))
    time.sleep(3.0)
    assert commands_seen(rig, n0) == [] and node.commands == before
    assert edge_mode(rig) == "auto"
    log = (rig.broker.tmp / "mosquitto.log").read_text().splitlines()
    assert any("Denied PUBLISH" in ln and "spBv1.0/plant/NCMD/%s" % NODE in ln for ln in log)

def test_browser_operator_confirms_a_mode_switch_viewer_sees_it_disabled(rig, pw):  # noqa: F811
    back_to_auto(rig)
    d = tempfile.mkdtemp(prefix="greenedge-chromium-")
    ctx = pw.chromium.launch_persistent_context(d, executable_path=CHROMIUM, args=ARGS,
                                                headless=True)
    try:
        p = ctx.pages[0] if ctx.pages else ctx.new_page()
        p.set_default_timeout(T_MS)

        def as_user(user):
            p.goto(rig.url + "/login")
            p.fill("#user", user)
            p.fill("#password", USERS[user][1])
            p.click("#login-btn")
            p.wait_for_url("**/overview")
            p.goto(rig.url + "/edge?g=plant&n=%s" % NODE)
            p.wait_for_selector("body[data-ready='1']")
            p.wait_for_selector("#loops p.loop[data-loop='fan'] .mode")
        as_user("vic")
        assert p.locator("#loops .to-manual").is_disabled()
        assert "needs operator" in p.locator("#loops .reason").inner_text()
        p.click("#logout")
        p.wait_for_url("**/login")
        as_user("olga")
        assert p.locator("#loops .to-manual").is_enabled()
        p.click("#loops .to-manual")
        p.wait_for_selector("#confirm:not(.hidden)")
        p.click("#confirm-yes")
        p.wait_for_function("""() => document.getElementById("msg").textContent
            .includes("fan is manual (the edge applied it)")""", timeout=60000)
        assert edge_mode(rig) == "manual"
        assert p.locator("#loops .mode").inner_text() == "manual"
    finally:
        ctx.close()
        shutil.rmtree(d, ignore_errors=True)
        back_to_auto(rig)
