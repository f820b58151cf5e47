"""Site KPIs (controller/site: config [baseline_kwh_per_h] and [tariff],
store.site_kpis, `greenedge site report`): rows written as the primary host
writes them (Store.write, node metrics with device '') for two edges over
two hours into the real PostgreSQL of tests/test_site.py, the report read as
the read-only role, its figures checked against sums computed here from the
rows the test wrote."""

import pytest

from controller.config.toml import ConfigError
from tests.test_site import SITE, pg  # noqa: F401 (fixture)

EXTRA = """
[baseline_kwh_per_h]
"Boiler house" = 40.0
"Compressor room" = 12.5
[tariff]
price_per_kwh = 0.2
currency = "EUR"
"""


def test_site_kpi_config_and_errors(tmp_path):
    from controller.site.config import load_site
    good = SITE % {"mq": 8883, "pg": 5432, "wpw": "w", "rpw": "r"} + EXTRA
    (tmp_path / "s.toml").write_text(good)
    cfg = load_site(tmp_path / "s.toml")
    assert cfg["baseline_kwh_per_h"] == {"Boiler house": 40.0, "Compressor room": 12.5}
    assert cfg["tariff"] == {"price_per_kwh": 0.2, "currency": "EUR"}
    (tmp_path / "s.toml").write_text(SITE % {"mq": 8883, "pg": 5432, "wpw": "w", "rpw": "r"})
    cfg = load_site(tmp_path / "s.toml")
    assert cfg["baseline_kwh_per_h"] == {} and cfg["tariff"] is None    # both optional
    line = good.splitlines().index('"Compressor room" = 12.5') + 1
    cases = [
        (good.replace('"Boiler house" = 40.0', '"Boiler hous" = 40.0'),
         r"baseline_kwh_per_h.Boiler hous: no such area in \[areas\] "
         r"\(areas: Boiler house, Compressor room\)"),
        (good.replace("12.5", "0"), r"s.toml:%d: baseline_kwh_per_h.Compressor room: expected "
                                    r"the area's baseline consumption in kWh/h" % line),
        (good.replace("12.5", '"12.5"'), r"Compressor room: .*got '12.5'"),
        (good.replace("12.5", "nan"), r"Compressor room: .*got nan"),
        (good.replace("price_per_kwh = 0.2\n", ""), r"tariff.price_per_kwh: missing"),
        (good.replace("price_per_kwh = 0.2", "price_per_kwh = -1"),
         r"tariff.price_per_kwh: -1 outside 0..1e\+06"),
        (good.replace('currency = "EUR"\n', ""), r"tariff.currency: missing"),
        (good.replace('currency = "EUR"', 'currency = " "'), r"tariff.currency: empty"),
        (good.replace('currency = "EUR"', 'currency = "EUR"\nvat = 0.2'),
         r"tariff.vat: unknown key"),
    ]
    for text, msg in cases:
        (tmp_path / "s.toml").write_text(text)
        with pytest.raises(ConfigError, match=msg):
            load_site(tmp_path / "s.toml")


# ---- the report over rows as the host writes them ----------------------------------------
GROUP = "kpis"
GAP_S = 60.0          # [site] stale_s here: a longer silence is time an edge did not report
STEP_S = 10.0


def _site_toml(tmp_path, pg):
    from tests.test_site import REPORTER_PW, WRITER_PW
    text = (SITE % {"mq": 8883, "pg": pg.port, "wpw": WRITER_PW, "rpw": REPORTER_PW}).replace(
        "stale_s = 3", "stale_s = %d" % GAP_S) + 'boiler2 = "Boiler house"\n' + EXTRA
    (tmp_path / "site.toml").write_text(text)
    return tmp_path / "site.toml"


class Rig:
    """What two hours of three edges look like in greenedge.metrics, built
    here and kept as plain lists to compute the expected figures from."""

    def __init__(self, t0):
        import datetime as dt
        import random
        self.t0, self.t1 = t0, t0 + dt.timedelta(hours=2)
        self.rows, self.events, self.energy = [], [], {}
        rnd = random.Random(18)
        h = 3600.0
        # boiler: ~30 kWh/h, silent 40..70 min (longer than GAP_S: not reported);
        # boiler2 (the same area) reports 30..60 min; compressor: ~10 kWh/h,
        # restarted without its saved state at 50 min (the counter back to 0.4)
        # and silent 95..110 min. Samples from a minute before to a minute after.
        plan = {"boiler": (30.0, [(40 * 60, 70 * 60)], None, (-60, 2 * h + 60)),
                "boiler2": (5.0, [], None, (30 * 60, 60 * 60)),
                "compressor": (10.0, [(95 * 60, 110 * 60)], 50 * 60, (-60, 2 * h + 60))}
        for node, (rate, gaps, reset, (a, b)) in plan.items():
            self.events.append((self.at(-h), GROUP, node, "", "NBIRTH", "bdSeq 0"))
            kwh, t, samples = 100.0, a, []
            while t <= b:
                if not any(g0 < t < g1 for g0, g1 in gaps):
                    if reset is not None and abs(t - reset) < 1e-6:
                        kwh = 0.4
                    samples.append((t, kwh))
                    self.kpi(node, "energy_kwh", t, kwh)
                    self.kpi(node, "co2_kg", t, kwh * 0.4)
                kwh += rate * STEP_S / h * rnd.uniform(0.5, 1.5)
                t += STEP_S
            self.energy[node] = samples
        # emissions: the open hour's mean every minute (not what the report takes),
        # and at each hour's close the edge's closed-hour figures, start last
        self.hours = {("boiler", "nox"): [(-h, 47.0, 0.0), (0, 42.5, 0.0), (h, 55.0, 1.0)],
                      ("compressor", "so2"): [(0, None, None), (h, 80.0, 0.0)]}
        limits = {"nox": 50.0, "so2": 100.0}
        for (node, key), hours in self.hours.items():
            for start, mean, exc in hours:
                for m in range(60):
                    self.kpi(node, key + "_hour_mean_mg_nm3", start + 60 * m + 30,
                             rnd.uniform(10, 90))
                close = start + h + 61
                self.kpi(node, key + "_limit_mg_nm3", close, limits[key])
                self.kpi(node, key + "_last_hour_mean_mg_nm3", close, mean)
                self.kpi(node, key + "_last_hour_exceeded", close, exc)
                self.kpi(node, key + "_last_hour_start_s", close + 0.001,
                         self.t0.timestamp() + start)
        # boiler restarted at 100 min: its NBIRTH repeats the last closed hour
        self.kpi("boiler", "nox_last_hour_start_s", 100 * 60, self.t0.timestamp())
        # alarms: births at -1 h (all normal, their priorities), then transitions
        for node, ids in (("boiler", {"fan1.down": 2, "fan1.drive_fault": 3,
                                      "service.alarm_rate": 1}),
                          ("compressor", {"comp1.down": 2})):
            for aid, prio in ids.items():
                self.node(node, "Alarms/%s/Priority" % aid, -h, float(prio))
                self.state(node, aid, -h, "normal")
            self.node(node, "Alarms/Active", -h, 0.0)
        for node, aid, t, state, n_active in (
                ("compressor", "comp1.down", -30 * 60, "unacknowledged", 1),  # before the range
                ("boiler", "fan1.down", 10 * 60, "unacknowledged", 1),
                ("boiler", "fan1.down", 20 * 60, "acknowledged", 1),
                ("boiler", "fan1.drive_fault", 30 * 60, "unacknowledged", 2),
                ("boiler", "fan1.drive_fault", 40 * 60, "returned_unacknowledged", 1),
                ("boiler", "service.alarm_rate", 50 * 60, "shelved", 1),
                ("boiler", "fan1.down", 2 * h + 300, "normal", 0)):            # after it
            self.state(node, aid, t, state)
            self.node(node, "Alarms/Active", t, float(n_active))

    def at(self, s):
        import datetime as dt
        return self.t0 + dt.timedelta(seconds=s)

    def node(self, node, metric, t, value, text=None):
        self.rows.append((self.at(t), GROUP, node, "", metric, value, text, None, False))

    def kpi(self, node, key, t, value):
        self.node(node, "KPIs/" + key, t, value)

    def state(self, node, aid, t, state):
        self.node(node, "Alarms/%s/State" % aid, t, None, state)

    # -- the expected figures, from the samples above --------------------------------
    def window(self, node, whole=False):
        t1 = (self.t1 - self.t0).total_seconds()
        return [(t, v) for t, v in self.energy[node] if whole or 0 <= t <= t1]

    def kwh(self, node, whole=False):
        s = self.window(node, whole)
        return sum(max(b - a, 0.0) for (_, a), (_, b) in zip(s, s[1:]))

    def intervals(self, node):
        s = [t for t, _ in self.window(node)]
        return [(a, b) for a, b in zip(s, s[1:]) if b - a <= GAP_S]

    def union_h(self, nodes):
        iv = sorted(x for n in nodes for x in self.intervals(n))
        total, cur = 0.0, None
        for a, b in iv:
            if cur is None or a > cur[1]:
                if cur is not None:
                    total += cur[1] - cur[0]
                cur = [a, b]
            else:
                cur[1] = max(cur[1], b)
        return (total + (cur[1] - cur[0] if cur else 0.0)) / 3600.0


@pytest.fixture(scope="module")
def rig(pg):  # noqa: F811
    """The rows written once, as the host writes them; two to three hours ago."""
    import datetime as dt
    from controller.site import store as st
    from tests.test_site import WRITER_PW
    now = dt.datetime.now(dt.timezone.utc)
    r = Rig(now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=3))
    s = st.Store(st.connect("host=127.0.0.1 port=%d dbname=site user=greenedge_writer "
                            "password=%s" % (pg.port, WRITER_PW)))
    for i in range(0, len(r.rows), 5000):
        s.write(r.rows[i:i + 5000], r.events if i == 0 else ())
    s.close()
    return r


def test_site_report_kpis(pg, rig, tmp_path, capsys):  # noqa: F811
    import csv
    import datetime as dt
    import json
    from controller.cli import main as cli
    t0 = rig.t0
    cfg_path = _site_toml(tmp_path, pg)
    args = ["site", "report", "-c", str(cfg_path), "--from", t0.isoformat(),
            "--to", rig.t1.isoformat()]
    capsys.readouterr()
    assert cli(args + ["--json"]) == 0
    r = json.loads(capsys.readouterr().out)

    # per edge: energy (the increases; the restart adds nothing), CO2, reported hours
    nodes = {n["node"]: n for n in r["nodes"]}
    assert set(nodes) == {"boiler", "boiler2", "compressor"}
    for node in nodes:
        assert nodes[node]["energy_kwh"] == pytest.approx(rig.kwh(node), rel=1e-9)
        assert nodes[node]["co2_kg"] == pytest.approx(0.4 * rig.kwh(node), rel=1e-9)
        assert nodes[node]["reported_h"] == pytest.approx(
            sum(b - a for a, b in rig.intervals(node)) / 3600.0, abs=1e-9)
        assert nodes[node]["cost"] == pytest.approx(0.2 * rig.kwh(node), rel=1e-9)
    assert nodes["boiler"]["reported_h"] == pytest.approx(2.0 - 0.5, abs=0.01)  # 30 min silent
    assert nodes["compressor"]["reported_h"] == pytest.approx(2.0 - 0.25, abs=0.01)
    # per area: the sums, the baseline over the time its edges reported (the
    # union: boiler2 covers most of boiler's silence), the saving, the cost
    areas = {a["area"]: a for a in r["areas"]}
    want = {"Boiler house": (("boiler", "boiler2"), 40.0),
            "Compressor room": (("compressor",), 12.5)}
    for area, (members, rate) in want.items():
        a = areas[area]
        kwh = sum(rig.kwh(n) for n in members)
        hrs = rig.union_h(members)
        assert a["nodes"] == list(members)
        assert a["energy_kwh"] == pytest.approx(kwh, rel=1e-9)
        assert a["reported_h"] == pytest.approx(hrs, abs=1e-9)
        assert a["baseline_kwh"] == pytest.approx(rate * hrs, rel=1e-9)
        assert a["saving_kwh"] == pytest.approx(rate * hrs - kwh, rel=1e-9)
        assert a["saving_pct"] == pytest.approx(100 * (rate * hrs - kwh) / (rate * hrs),
                                                rel=1e-9)
        assert a["cost"] == pytest.approx(0.2 * kwh, rel=1e-9)
        assert a["saving_cost"] == pytest.approx(0.2 * (rate * hrs - kwh), rel=1e-9)
        assert a["saving_kwh"] > 0
    # the area reported 0..60 and 70..120 min: boiler2 covered 40..60 of boiler's silence
    assert areas["Boiler house"]["reported_h"] == pytest.approx(110 / 60, abs=0.01)
    total = r["total"]
    assert total["energy_kwh"] == pytest.approx(sum(rig.kwh(n) for n in nodes), rel=1e-9)
    assert total["baseline_kwh"] == pytest.approx(
        sum(areas[a]["baseline_kwh"] for a in want), rel=1e-9)
    assert total["saving_kwh"] == pytest.approx(total["baseline_kwh"] - total["energy_kwh"],
                                                rel=1e-9)
    assert r["currency"] == "EUR"
    # emissions: each closed hour inside the range once, as the edge closed it
    hours = sorted((e["node"], e["stack"], e["hour"], e["mean_mg_nm3"], e["limit_mg_nm3"],
                    e["exceeded"]) for e in r["emissions"])
    iso = lambda s: (t0 + dt.timedelta(seconds=s)).isoformat()  # noqa: E731
    assert hours == [("boiler", "nox", iso(0), 42.5, 50.0, False),
                     ("boiler", "nox", iso(3600), 55.0, 50.0, True),
                     ("compressor", "so2", iso(0), None, 100.0, None),
                     ("compressor", "so2", iso(3600), 80.0, 100.0, False)]
    # active alarms at the range's end: each edge's Alarms/Active, the ids in
    # an active state then (comp1.down raised before the range; fan1.down's
    # return to normal after it does not count; returned_unacknowledged and
    # shelved are not active)
    assert (nodes["boiler"]["active_alarms"], nodes["boiler2"]["active_alarms"],
            nodes["compressor"]["active_alarms"]) == (1, None, 1)
    assert areas["Boiler house"]["active_alarms"] == 1
    assert areas["Boiler house"]["alarms"] == [
        {"node": "boiler", "id": "fan1.down", "state": "acknowledged", "priority": 2,
         "since": iso(20 * 60)}]
    assert areas["Compressor room"]["alarms"] == [
        {"node": "compressor", "id": "comp1.down", "state": "unacknowledged", "priority": 2,
         "since": iso(-30 * 60)}]
    assert total["active_alarms"] == 2

    # the same figures in the CSV (the energy report's columns first) and the text
    assert cli(args + ["--csv", str(tmp_path / "r.csv")]) == 0
    with open(tmp_path / "r.csv", newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0][:4] == ["area", "node", "energy_kwh", "co2_kg"]
    col = {k: i for i, k in enumerate(lines[0])}
    rows = {(ln[0], ln[1]): ln for ln in lines[1:]}
    assert [k for k in rows] == [("Boiler house", "boiler"), ("Boiler house", "boiler2"),
                                 ("Boiler house", ""), ("Compressor room", "compressor"),
                                 ("Compressor room", ""), ("total", "")]
    for area in want:
        ln = rows[(area, "")]
        assert float(ln[col["baseline_kwh"]]) == pytest.approx(areas[area]["baseline_kwh"],
                                                               abs=1e-3)
        assert float(ln[col["saving_kwh"]]) == pytest.approx(areas[area]["saving_kwh"],
                                                             abs=1e-3)
        assert ln[col["currency"]] == "EUR" and ln[col["active_alarms"]] == "1"
    assert float(rows[("total", "")][col["energy_kwh"]]) == pytest.approx(
        total["energy_kwh"], abs=1e-3)
    assert rows[("Boiler house", "boiler2")][col["active_alarms"]] == ""
    capsys.readouterr()
    assert cli(args) == 0
    text = capsys.readouterr().out
    assert "fan1.down" in text and "comp1.down" in text and "invalid" in text
    assert "%.3f" % areas["Boiler house"]["saving_kwh"] in text


def test_live_accounting_publishes_the_closed_hour():
    """The edge's KPIs the site report takes: the last closed clock hour's
    mean at the reference O2, whether it was over the limit, its start, and
    the limit. 40 mg/Nm3 at 6 % O2 for an hour, then 60: once an hour's last
    minute has closed its figures are there; while the first hour is open
    there are none."""
    from types import SimpleNamespace
    from controller.runtime.accounting import LiveAccounting
    cfg = {"grid_kg_co2_per_kwh": 0.4, "nox_limit_mg_nm3": 50.0, "o2_ref_pct": 6.0,
           "nox_point": ("scr", "nox_out_mg_nm3"), "nox_o2_point": ("scr", "o2_pct")}
    acc = LiveAccounting(cfg, {"scr": SimpleNamespace(points=["nox_out_mg_nm3", "o2_pct"])})
    t0 = 1_800_000_000.0 - 1_800_000_000.0 % 3600     # a clock hour
    seen = []
    for i in range(int(2.1 * 3600 / 10)):
        t = t0 + 10 * (i + 1)
        c = 40.0 if t <= t0 + 3600 else 60.0
        acc.add(t, 10.0, lambda d, p: c if p == "nox_out_mg_nm3" else 6.0)
        k = acc.kpis()
        seen.append((t - t0, k["nox_last_hour_start_s"], k["nox_last_hour_mean_mg_nm3"],
                     k["nox_last_hour_exceeded"]))
    assert acc.kpis()["nox_limit_mg_nm3"] == 50.0
    assert all(s[1:] == (None, None, None) for s in seen if s[0] < 3600)
    first = next(s for s in seen if s[1] is not None)
    assert 3600 <= first[0] <= 3600 + 70
    assert first[1:] == (t0, pytest.approx(40.0), 0.0)
    assert seen[-1][1:] == (t0 + 3600, pytest.approx(60.0), 1.0)


class StubHost:
    """The site host's status as the HMI reads it (the edges' online state; the
    figures all come from PostgreSQL). tests/test_site_hmi.py runs the real one."""

    def status(self):
        n = {"online": True, "stale": False, "bdSeq": 0, "devices": {"fan1": True}}
        return {"connected": True,
                "nodes": {"%s/%s" % (GROUP, node): dict(n) for node in
                          ("boiler", "boiler2", "compressor")}}


def test_site_hmi_overview_has_the_report_figures(pg, rig, tmp_path, capsys):  # noqa: F811
    """/api/site: per area the same figures as `greenedge site report` over the
    HMI's 24 h (here: every row the rig wrote), the site total, the active
    alarms now (fan1.down went back to normal after the report's range)."""
    import json
    from controller.cli import main as cli
    from controller.north.hmi.config import hmi_table
    from controller.north.users import add_user
    from controller.site.cli import report_factory
    from controller.site.config import load_site
    from controller.site.hmi import SiteHmi
    from tests.test_hmi_support import USERS, Client
    cfg_path = _site_toml(tmp_path, pg)
    cfg = load_site(cfg_path)
    for name, (role, pw_) in USERS.items():
        add_user(tmp_path / "users.toml", name, role, pw_)
    hmi = SiteHmi(StubHost(), cfg, hmi_table(listen="127.0.0.1:0", users=tmp_path / "users.toml"),
                  report_factory(cfg), state_dir=tmp_path).start()
    try:
        c = Client(hmi.url)
        assert c.json("GET", "/api/site")[0] == 401
        assert c.login("vic")[0] == 200
        code, j = c.json("GET", "/api/site")
        assert code == 200, j
    finally:
        hmi.stop()
    k = j["kpis"]
    capsys.readouterr()
    assert cli(["site", "report", "-c", str(cfg_path), "--from", k["from"], "--to", k["to"],
                "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert k["currency"] == "EUR" and k["total"] == pytest.approx(r["total"])
    areas = {a["area"]: a for a in j["areas"]}
    assert set(areas) == {"Boiler house", "Compressor room"}
    for want in r["areas"]:
        a = areas[want["area"]]
        figures = {x: v for x, v in want.items() if x not in ("alarms", "nodes", "area")}
        assert a["kpis"] == pytest.approx(figures), want["area"]
        assert a["alarms"] == want["alarms"]
        assert a["emissions"] == [e for e in r["emissions"] if e["area"] == want["area"]]
        assert [e["node"] for e in a["edges"]] == want["nodes"]
    # against the rows: every sample is inside the 24 h
    boiler = areas["Boiler house"]
    assert boiler["kpis"]["energy_kwh"] == pytest.approx(
        rig.kwh("boiler", True) + rig.kwh("boiler2", True), rel=1e-9)
    assert {e["node"]: e["energy_kwh_24h"] for e in boiler["edges"]} == pytest.approx(
        {"boiler": rig.kwh("boiler", True), "boiler2": rig.kwh("boiler2", True)}, rel=1e-9)
    assert boiler["kpis"]["active_alarms"] == 0 and boiler["alarms"] == []
    assert [x["id"] for x in areas["Compressor room"]["alarms"]] == ["comp1.down"]
    assert areas["Compressor room"]["kpis"]["active_alarms"] == 1
    assert k["total"]["active_alarms"] == 1
    # the hour closed before the report's range is inside the 24 h
    assert len([e for e in boiler["emissions"] if e["stack"] == "nox"]) == 3
