"""The HMI in a real browser: Debian's headless Chromium (/usr/bin/chromium,
package chromium) driven by Playwright for Python (the test extra; never
`playwright install`), against the service on the fake line
(tests/test_hmi_support.py). What an operator would notice: live values
change; a viewer's switch to manual is refused (page and API); an operator
puts the fan loop in manual at 40 %, the drive's speed reference (over the
fake bus) reaches 40 %, back to auto the speed ramps; a signal fault (the
drive's NE43 quality bad on process_pv) raises an alarm that is acknowledged
and returns to normal; a 1 h trend has points; the devices, audit and export
pages show what they should. A screenshot of each page is saved under the
pytest tmp path (and in $GREENEDGE_HMI_SHOTS, e.g. docs/hmi, when set)."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.test_hmi_support import USERS, Rig, free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
T_MS = 30000   # generous: a loaded 2-core machine


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    r = Rig(tmp_path_factory.mktemp("hmi"))
    try:
        yield r.start()
    finally:
        r.stop()


@pytest.fixture(scope="module")
def pw():
    if not os.path.exists(CHROMIUM):
        pytest.fail("%s missing: apt-get install chromium chromium-driver (tools/test.sh does "
                    "it in CI)" % CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright missing: pip install -e '.[test]' (never `playwright install`)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = tmp_path_factory.mktemp("hmi-screenshots")
    yield d
    out = os.environ.get("GREENEDGE_HMI_SHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        for f in sorted(d.glob("*.png")):
            shutil.copy(f, Path(out) / f.name)


class Browser:
    """One user's browser: a fresh profile (user-data-dir) of its own."""

    def __init__(self, pw, rig, user):
        self.dir = tempfile.mkdtemp(prefix="greenedge-chromium-")
        self.ctx = pw.chromium.launch_persistent_context(
            self.dir, executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1280, "height": 860})
        self.page = self.ctx.pages[0] if self.ctx.pages else self.ctx.new_page()
        self.page.set_default_timeout(T_MS)
        self.rig = rig
        p = self.page
        p.goto(rig.url + "/overview")
        p.wait_for_url("**/login")
        p.fill("#user", user)
        p.fill("#password", USERS[user][1])
        p.click("#login-btn")
        p.wait_for_url("**/overview")
        self.ready()

    def ready(self):
        self.page.wait_for_selector("body[data-ready='1']")

    def go(self, page):
        self.page.goto(self.rig.url + "/" + page)
        self.ready()

    def shot(self, d, name):
        self.page.screenshot(path=str(d / ("%s.png" % name)), full_page=True)

    def api(self, method, path, body=None):
        """A call from inside the page, with its session and CSRF token."""
        return self.page.evaluate("""async ([m, path, body]) => {
            const s = await (await fetch('/api/session')).json();
            const r = await fetch(path, {method: m, headers: {'Content-Type': 'application/json',
                'X-CSRF-Token': s.csrf}, body: m === 'GET' ? undefined : JSON.stringify(body)});
            return [r.status, await r.json()]; }""", [method, path, body])

    def close(self):
        self.ctx.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def browser(pw, rig):
    made = []

    def open_as(user):
        made.append(Browser(pw, rig, user))
        return made[-1]
    yield open_as
    for b in made:
        b.close()


def _text(page, sel):
    return page.locator(sel).first.inner_text()


def test_viewer_sees_live_values_and_may_not_switch(rig, browser, shots):
    b = browser("vic")
    p = b.page
    p.wait_for_selector("[data-tag='fan1.process_pv']")
    first = _text(p, "[data-tag='fan1.process_pv'] .v")
    p.wait_for_function("""(v) => document.querySelector("[data-tag='fan1.process_pv'] .v")
                           .textContent !== v""", arg=first)
    assert _text(p, "[data-tag='fan1.process_pv'] .q") == "good"
    assert _text(p, "#conn") == "live"
    assert "kWh" in _text(p, "#kpi") and "saving vs baseline" in _text(p, "#kpi")
    b.shot(shots, "overview")
    b.go("loops")
    p.fill("#fp-fan .op-in[data-point='speed_ref_pct']", "40")
    p.click("#fp-fan .to-manual")
    assert "MANUAL" in _text(p, "#confirm-text")
    p.click("#confirm-yes")
    p.wait_for_selector("#msg.refused")
    assert "role viewer may not change mode" in _text(p, "#msg")
    code, j = b.api("POST", "/api/loops/fan/mode",
                    {"mode": "manual", "outputs": {"drive": {"speed_ref_pct": 40}}})
    assert code == 403 and not j["accepted"] and "needs operator" in j["error"]
    assert rig.svc.loops["fan"].manual is None
    assert "(engineer)" in _text(p, "#fp-fan")   # parameters: read-only for a viewer
    assert p.locator("#fp-fan .par-in").count() == 0


def test_operator_manual_40_then_auto_ramps(rig, browser, shots):
    b = browser("olga")
    b.go("loops")
    p = b.page
    auto_ref = rig.dev.get("speed_ref_pct")
    assert abs(auto_ref - 40.0) > 5.0, auto_ref   # the loop's own output is elsewhere
    p.fill("#fp-fan .op-in[data-point='speed_ref_pct']", "40")
    p.click("#fp-fan .to-manual")
    p.click("#confirm-yes")
    p.wait_for_selector("#msg.accepted")
    # the command reaches the drive over the (fake) bus, and the page shows it
    rig.wait(lambda: abs(rig.dev.get("speed_ref_pct") - 40.0) < 0.01, "drive ref never 40 %")
    p.wait_for_function("""() => document.querySelector("#fp-fan .mode").textContent
                           === 'manual'""")
    p.wait_for_function("""() => Math.abs(parseFloat(document.querySelector(
        "#fp-fan [data-op='drive.speed_ref_pct']").textContent) - 40) < 0.01""")
    p.wait_for_function("""() => Math.abs(parseFloat(document.querySelector(
        "#fp-fan [data-tag='fan1.speed_actual_pct'] .v").textContent) - 40) < 1""")
    b.shot(shots, "loops")
    p.click("#fp-fan .to-auto")
    p.click("#confirm-yes")
    p.wait_for_selector("#msg.accepted")
    seen = []

    def ramp():
        seen.append(rig.dev.get("speed_ref_pct"))
        return len(set(round(v, 2) for v in seen if 40.5 < v and abs(v - 40) <
                       abs(auto_ref - 40) - 0.5)) >= 5
    rig.wait(ramp, "no ramp from 40 %% back towards %.1f %%: %s" % (auto_ref, seen[-20:]))
    steps = [abs(b2 - a) for a, b2 in zip(seen, seen[1:])]
    assert max(steps) < abs(auto_ref - 40) / 2, steps   # a ramp, not a step
    p.wait_for_function("""() => document.querySelector("#fp-fan .mode").textContent
                           !== 'manual'""")
    assert rig.svc.loops["fan"].manual is None


def test_signal_fault_alarm_ack_and_normal(rig, browser, shots):
    from firmware import regmap
    b = browser("olga")
    b.go("alarms")
    p = b.page
    row = "tr[data-alarm='fan1.process_pv.bad']"
    p.wait_for_selector(row)
    assert _text(p, row + " .state") == "normal"
    rig.set_quality("process_pv", regmap.Q_BAD)
    try:
        p.wait_for_function("""(r) => { const e = document.querySelector(r + ' .state');
            return e && e.textContent === 'unacknowledged'; }""", arg=row)
        assert "(1)" in _text(p, "#nav a[href='/alarms']") or "(" in _text(p, "#nav")
        b.shot(shots, "alarms")
        p.click(row + " .ack")
        p.wait_for_function("""(r) => { const e = document.querySelector(r + ' .state');
            return e && e.textContent === 'acknowledged'; }""", arg=row)
        assert "olga" in _text(p, row)
    finally:
        rig.set_quality("process_pv", regmap.Q_GOOD)
    p.wait_for_function("""(r) => { const e = document.querySelector(r + ' .state');
        return e && e.textContent === 'normal'; }""", arg=row)
    # shelve with a reason and an expiry, then back in service
    p.click(row + " .shelve")
    p.fill("#shelve-min", "30")
    p.fill("#shelve-reason", "transmitter being replaced")
    p.click("#shelve-go")
    p.wait_for_function("""(r) => { const e = document.querySelector(r + ' .state');
        return e && e.textContent === 'shelved'; }""", arg=row)
    assert "transmitter being replaced" in _text(p, row)
    p.click(row + " .unshelve")
    p.wait_for_function("""(r) => { const e = document.querySelector(r + ' .state');
        return e && e.textContent === 'normal'; }""", arg=row)
    b.go("audit")   # the page refreshes itself: the newest records come within seconds
    p.wait_for_function("""() => document.querySelector('table.audit').textContent
                           .includes('unshelve')""")
    audit = _text(p, "table.audit")
    for what in ("hmi:olga", "ack", "shelve", "unshelve", "mode"):
        assert what in audit, what
    assert "refused: role viewer may not change mode" in audit
    b.shot(shots, "audit")


def test_trend_devices_export(rig, browser, shots):
    b = browser("erik")
    b.go("trends")
    p = b.page
    # (run alone, the historian may hold only seconds yet: wait for a dozen samples)
    rig.wait(lambda: len(b.api("GET", "/api/trend?tags=fan1.speed_actual_pct&range=1h")[1]
                         ["series"]["fan1.speed_actual_pct"]) > 12, "historian samples")
    p.wait_for_selector("#trend-img")
    p.select_option("#trend-tags", ["fan1.process_pv", "fan1.speed_actual_pct"])
    p.select_option("#trend-range", "1h")
    p.click("#trend-go")
    p.wait_for_function("() => { const i = document.querySelector('#trend-img');"
                        " return i && i.complete && i.naturalWidth > 0; }")
    src = p.get_attribute("#trend-img", "src")
    svg = p.evaluate("async (u) => (await fetch(u)).text()", src)
    n_pts = [len(pl.split('points="')[1].split('"')[0].split())
             for pl in svg.split("<polyline")[1:]]
    assert len(n_pts) == 2 and min(n_pts) > 10, n_pts
    assert 'class="limit"' in svg and "fan1.speed_hi hi 95" in svg   # the limit alarm, drawn
    b.shot(shots, "trends")
    b.go("devices")
    dev = _text(p, "tr[data-device='fan1']")
    assert "l1" in dev and "motor" in dev and "up" in dev
    b.shot(shots, "devices")
    b.go("export")
    p.select_option("#export-tags", ["fan1.power_kw"])
    p.select_option("#export-range", "1h")
    p.dispatch_event("#export-range", "change")
    href = p.get_attribute("#export-link", "href")
    csv = p.evaluate("async (u) => (await fetch(u)).text()", href)
    lines = csv.strip().splitlines()
    assert lines[0] == "t_s,tag,value,quality" and len(lines) > 10
    assert all(",fan1.power_kw," in ln for ln in lines[1:])
    b.shot(shots, "export")
    # the engineer's faceplate offers the parameters; a value the strategy refuses is refused
    b.go("loops")
    p.fill("#fp-fan .par-in[data-name='static_head']", "5")
    p.click("#fp-fan .par-set[data-name='static_head']")
    p.click("#confirm-yes")
    p.wait_for_selector("#msg.refused")
    b.page.goto(rig.url + "/login")
    b.shot(shots, "login")


def test_device_down_shows_in_the_page(rig, browser):
    b = browser("vic")
    p = b.page
    sel = "[data-tag='fan1.process_pv'] .q"
    p.wait_for_function("(s) => document.querySelector(s).textContent === 'good'", arg=sel)
    rig.dev.silent = True          # the drive stops answering
    try:
        p.wait_for_function("(s) => document.querySelector(s).textContent === 'down'", arg=sel)
    finally:
        rig.dev.silent = False
    p.wait_for_function("(s) => document.querySelector(s).textContent === 'good'", arg=sel)


def test_service_restart_page_goes_stale_and_reconnects(pw, tmp_path):
    port = free_port()
    r = Rig(tmp_path, port=port).start()
    b = None
    try:
        b = Browser(pw, r, "olga")
        p = b.page
        p.wait_for_function("() => document.querySelector('#conn').textContent === 'live'")
        r.stop()                                       # the service goes away
        cookie = [c["value"] for c in b.ctx.cookies() if c["name"] == "greenedge_session"][0]
        kept = (tmp_path / "state" / "hmi_sessions.json").read_text()
        assert "olga" in kept and cookie not in kept   # only the id's hash is on disk
        p.wait_for_selector("#conn.lost")
        assert "stale" in p.get_attribute("body", "class")
        r = Rig(tmp_path, port=port).start()           # and comes back on the same port
        p.wait_for_selector("#conn.ok")
        first = _text(p, "[data-tag='fan1.process_pv'] .v")
        p.wait_for_function("""(v) => document.querySelector("[data-tag='fan1.process_pv'] .v")
                               .textContent !== v""", arg=first)
        assert p.url.endswith("/overview")             # still logged in: no login page
        code, j = b.api("POST", "/api/loops/fan/mode", {"mode": "auto"})
        assert code == 200 and j["accepted"], j        # the same session and CSRF token
    finally:
        if b is not None:
            b.close()
        r.stop()


def test_set_point_from_the_faceplate(rig, browser):
    b = browser("olga")
    b.go("loops")
    p = b.page
    p.fill("#fp-fan .sp-in[data-key='flow_sp_m3s']", "25")
    p.click("#fp-fan .sp-set[data-key='flow_sp_m3s']")
    p.click("#confirm-yes")
    p.wait_for_selector("#msg.accepted")
    p.wait_for_function("""() => document.querySelector("#fp-fan .sp[data-sp='flow_sp_m3s']")
                           .textContent === '25.00'""")
    assert rig.svc.loops["fan"].process["flow_sp_m3s"] == 25.0
    p.fill("#fp-fan .sp-in[data-key='flow_sp_m3s']", "80")    # over the design flow (50)
    p.click("#fp-fan .sp-set[data-key='flow_sp_m3s']")
    p.click("#confirm-yes")
    p.wait_for_selector("#msg.refused")
    assert "outside 0..50" in p.inner_text("#msg")
    assert rig.svc.loops["fan"].process["flow_sp_m3s"] == 25.0


def test_engineer_changes_an_alarm_limit(rig, browser):
    row = "tr[data-alarm='fan1.speed_hi']"
    op = browser("olga")
    op.go("alarms")
    assert op.page.locator(row + " .set-limit").count() == 0      # not offered to an operator
    code, j = op.api("POST", "/api/alarms/fan1.speed_hi/limit", {"values": {"hi": 90}})
    assert code == 403 and "needs engineer" in j["error"]
    b = browser("erik")
    b.go("alarms")
    p = b.page
    assert "hi 95" in p.inner_text(row)
    p.click(row + " .set-limit")
    p.fill("#limit-value", "90")
    p.click("#limit-go")
    p.click("#confirm-yes")
    p.wait_for_selector("#msg.accepted")
    p.wait_for_function("(r) => document.querySelector(r).textContent.includes('hi 90')",
                        arg=row)
    assert rig.svc.alarms.alarms["fan1.speed_hi"].d.hi == 90.0
