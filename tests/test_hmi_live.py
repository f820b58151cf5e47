"""The HMI's live values: the stream sends a point again only when its value
or quality changes, and a new read of unchanged values as its read's sample
time (one clock per read block), so the page still shows every point's age
since its last read; the JSON API's /api/live keeps [value, quality, age_s]."""

import json
import time
from types import SimpleNamespace

from controller.config import load_config
from controller.north.hmi import server, views
from firmware import regmap
from tests.test_hmi_browser import browser, pw, rig  # noqa: F401 (fixtures)
from tests.test_hmi_support import PLANT


def _frame(cfg, table, dev, now):
    points, times = views.live_points(cfg, dev, now, table)
    return {"now": now, "plant_s": 0.0, "points": points, "clocks": times, "devices": {},
            "loops": {}, "kpi": {}, "alarms": {}}


def _sent(prev, frame):
    h = SimpleNamespace(frame=frame)
    server.HmiServer._delta(h, prev)
    assert h._delta_msg.startswith(b"data: ")
    return json.loads(h._delta_msg[6:])


def test_a_read_of_unchanged_values_sends_its_time_not_the_values(tmp_path):
    (tmp_path / "plant.toml").write_text(PLANT.split("[hmi]")[0])
    cfg = load_config(tmp_path / "plant.toml")
    table = views.live_table(cfg)
    lim = views.stale_limits(cfg)[("fan1", "voltage_l1_v")][0]
    t0 = 1000.0

    def dev(t, volts=230.0, up=True):
        return {"fan1": {"up": up, "points": {"voltage_l1_v": (volts, regmap.Q_GOOD, t),
                                              "process_pv": (12.5, regmap.Q_GOOD, t)}}}
    first = _frame(cfg, table, dev(t0), t0 + 0.2)
    again = _frame(cfg, table, dev(t0 + 1.0), t0 + 1.2)     # read again, same values
    m = _sent(first, again)
    assert m["points"] == {}
    clocks = {first["points"][t][2] for t in ("fan1.voltage_l1_v", "fan1.process_pv")}
    assert m["clocks"] == dict.fromkeys(clocks, t0 + 1.0)
    # the API still gives each point's age since its read
    live = server.HmiServer.api_frame(SimpleNamespace(frame=again))
    assert "clocks" not in live and live["points"]["fan1.voltage_l1_v"] == [230.0, "good", 0.2]
    # a new value is sent; a point not read for longer than its limit turns stale
    m = _sent(again, _frame(cfg, table, dev(t0 + 2.0, 231.0), t0 + 2.2))
    assert list(m["points"]) == ["fan1.voltage_l1_v"] and m["points"]["fan1.voltage_l1_v"][:2] \
        == [231.0, "good"]
    m = _sent(again, _frame(cfg, table, dev(t0 + 1.0), t0 + 1.0 + lim + 0.5))
    assert m["points"]["fan1.voltage_l1_v"][1] == "stale" and m["clocks"] == {}
    m = _sent(again, _frame(cfg, table, dev(t0 + 2.0, up=False), t0 + 2.2))
    assert {v[1] for v in m["points"].values()} == {"down"}


def test_the_page_ages_unchanged_values_from_their_last_read(rig, browser):  # noqa: F811
    """The drive's line voltages stay 0 on the fake line: read every poll, the
    page shows them fresh (an age within their stale limit), not the time
    since they last changed."""
    b = browser("vic")
    p = b.page
    tag = "fan1.voltage_l1_v"
    lim = views.stale_limits(rig.cfg)[("fan1", "voltage_l1_v")][0]
    row = "[data-tag='%s']" % tag
    p.wait_for_function("(r) => document.querySelector(r + ' .age').textContent !== ''", arg=row)
    seen = set()
    for _ in range(4):
        value, q, age = (p.inner_text(row + " " + c) for c in (".v", ".q", ".age"))
        if q == "good":
            assert age.endswith(" s") and 0.0 <= float(age[:-2]) <= lim + 0.1, (age, lim)
            seen.add(value)
        time.sleep(2.0)
    assert len(seen) == 1, seen     # the value did not change meanwhile


def test_a_row_scrolled_into_view_shows_the_latest_value_at_once(rig, browser):  # noqa: F811
    """The page paints only the point tables in view; one scrolled into view
    shows the values the page last received within two frames, not at the
    next message."""
    b = browser("vic")
    p = b.page
    p.set_viewport_size({"width": 1280, "height": 120})     # the KPI card fills it
    b.go("overview")
    row = "[data-tag='fan1.process_pv']"
    p.wait_for_selector(row, state="attached")
    assert not p.evaluate("(r) => { const b = document.querySelector(r).getBoundingClientRect();"
                          " return b.top < innerHeight && b.bottom > 0; }", row)
    time.sleep(3.0)     # the value moves on meanwhile (the fake drive's process)
    for _ in range(5):
        shown, latest, moved = p.evaluate("""async (r) => {
            const el = document.querySelector(r), t = S.frame.now;
            el.scrollIntoView();
            await new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
            const out = [el.querySelector('.v').textContent, fmt(S.frame.points[el.dataset.tag][0]),
                         S.frame.now !== t];
            window.scrollTo(0, 0);
            return out; }""", row)
        if not moved:       # (a message in between would be painted at the next frame)
            break
        time.sleep(1.0)
    assert not moved and shown == latest, (shown, latest)
