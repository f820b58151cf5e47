"""Prometheus /metrics against the real prometheus_client server, on the
service polling a fake line (hil_tests/fakeline.py): a plain HTTP scrape,
parsed with prometheus_client's own text parser, checked against the hub."""

import asyncio
import urllib.request

import pytest

from controller.config import load_config
from controller.errors import UserError
from tests.plant_toml import fan_plant

PLANT = fan_plant('north', 2, 100, tail="""
    [alarm_settings]
    first_contact_s = 1.0
    [metrics]
    listen = "127.0.0.1:0"
""")


def scrape(url):
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        text = r.read().decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    return fams, text


def samples(fam, name=None):
    return {tuple(sorted(s.labels.items())): s.value for s in fam.samples
            if name is None or s.name == name}


def service(tmp_path, text=PLANT):
    from hil_tests.fakeline import fake_service
    (tmp_path / "plant.toml").write_text(text)
    cfg = load_config(tmp_path / "plant.toml")
    # fan2 never answers: down, its alarm active
    return fake_service(cfg, [1], historian=False)


def test_metrics_scraped_from_a_running_service_match_the_hub(tmp_path):
    from controller.north.prometheus import MetricsServer
    svc = service(tmp_path)

    async def until(cond, what):
        for _ in range(600):          # no fixed timing: a loaded machine is slow
            if cond():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(what)

    def st():
        return svc.hub.latest("status").get("service") or {}

    live = {}

    async def run():
        task = asyncio.create_task(svc.run(120.0))
        await until(lambda: svc.north, "metrics server never started")
        m = svc.north[0]
        assert m.host == "127.0.0.1" and m.port > 0
        await until(lambda: st().get("lines", {}).get("l1", {}).get("tx", 0) > 20
                    and svc.alarms.alarms["fan2.down"].state == "unacknowledged"
                    and st().get("groups", {}).get("process", {}).get("cycles", 0) > 5,
                    "no polls, cycles or fan2 alarm")
        live["a"] = await asyncio.to_thread(scrape, m.url)
        await asyncio.sleep(0.5)
        live["b"] = await asyncio.to_thread(scrape, m.url)
        svc.stop()
        return await task
    asyncio.run(run())
    # the service stopped its server
    with pytest.raises(OSError):
        urllib.request.urlopen(svc.north[0].url, timeout=2)
    a, text = live["a"]
    b, _ = live["b"]
    for name in ("greenedge_energy_joules", "greenedge_modbus_requests",
                 "greenedge_modbus_request_duration_seconds", "greenedge_cycle_duration_seconds",
                 "greenedge_cycle_overruns", "greenedge_device_up", "greenedge_loop_mode",
                 "greenedge_alarms_active"):
        assert name in a, name
    assert a["greenedge_energy_joules"].type == "counter"
    assert "greenedge_energy_joules_total{device=\"fan1\"}" in text
    assert a["greenedge_modbus_request_duration_seconds"].type == "histogram"
    assert samples(a["greenedge_device_up"]) == {(("device", "fan1"),): 1.0,
                                                 (("device", "fan2"),): 0.0}
    assert samples(a["greenedge_loop_mode"])[(("loop", "fan"), ("mode", "auto"))] == 1.0
    assert samples(a["greenedge_alarms_active"])[(("priority", "2"),)] >= 1
    # counters only go up between two scrapes of the running service
    ok = (("line", "l1"), ("result", "ok"))
    assert samples(b["greenedge_modbus_requests"])[ok] >= \
        samples(a["greenedge_modbus_requests"])[ok] > 0
    assert samples(a["greenedge_modbus_requests"])[(("line", "l1"), ("result", "timeout"))] > 0

    # A stopped service holds still: every figure equals the runtime's own.
    m = MetricsServer("127.0.0.1", 0, svc.hub, svc.lines, svc.groups, svc.alarms).start()
    try:
        fams, _ = scrape(m.url)
    finally:
        m.stop()
    status = svc.hub.latest("status")["service"]
    line = status["lines"]["l1"]
    req = samples(fams["greenedge_modbus_requests"])
    assert req[ok] == line["tx"] - line["exceptions"]
    assert req[(("line", "l1"), ("result", "timeout"))] == line["timeouts"]
    kwh = svc.hub.latest("kpi")["kpis"]["energy_kwh.fan1"]
    assert samples(fams["greenedge_energy_joules"], "greenedge_energy_joules_total")[
        (("device", "fan1"),)] == pytest.approx(kwh * 3.6e6)
    hist = samples(fams["greenedge_modbus_request_duration_seconds"],
                   "greenedge_modbus_request_duration_seconds_count")
    assert hist[(("line", "l1"),)] == svc.lines["l1"].stats.tx
    inf = samples(fams["greenedge_modbus_request_duration_seconds"],
                  "greenedge_modbus_request_duration_seconds_bucket")
    assert inf[(("le", "+Inf"), ("line", "l1"))] == svc.lines["l1"].stats.tx
    total = samples(fams["greenedge_modbus_request_duration_seconds"],
                    "greenedge_modbus_request_duration_seconds_sum")[(("line", "l1"),)]
    assert total == pytest.approx(sum(svc.lines["l1"].stats.lat), rel=1e-6) or \
        svc.lines["l1"].stats.tx > len(svc.lines["l1"].stats.lat)
    cyc = samples(fams["greenedge_cycle_duration_seconds"],
                  "greenedge_cycle_duration_seconds_count")
    assert cyc[(("group", "process"),)] == svc.groups["process"].cycles
    assert samples(fams["greenedge_cycle_overruns"], "greenedge_cycle_overruns_total")[
        (("group", "process"),)] == status["groups"]["process"]["overruns"]
    active = sum(v for v in samples(fams["greenedge_alarms_active"]).values())
    assert active == svc.alarms.summary()["active"] >= 1


def test_histogram_window_overflow_keeps_count_equal_to_replies():
    """More replies between two scrapes than the line's 4,096-latency window:
    _count is still every reply, the window's newest stand for the rest."""
    from collections import deque
    from controller.north.prometheus import MODBUS_BUCKETS, _Accum
    a = _Accum(MODBUS_BUCKETS)
    lat = deque(maxlen=4)
    for x in (0.0015, 0.003):
        lat.append(x)
    a.feed(lat, 2)
    b = dict(a.buckets())
    assert b["0.002"] == 1 and b["+Inf"] == 2
    for x in (0.003, 0.003, 0.003, 0.003, 0.003, 0.003):   # 6 new, window keeps 4
        lat.append(x)
    a.feed(lat, 8)
    b = dict(a.buckets())
    assert b["+Inf"] == 8 and b["0.002"] == 1 and b["0.005"] == 8
    assert a.sum == pytest.approx(0.0015 + 7 * 0.003)
    a.feed(lat, 8)                                        # nothing new: nothing added
    assert dict(a.buckets())["+Inf"] == 8


def test_metrics_config_and_cli_errors(tmp_path):
    from controller.cli import main
    bad = PLANT.replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:http"')
    (tmp_path / "bad.toml").write_text(bad)
    with pytest.raises(UserError, match=r"metrics.listen.*not a number"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "ok.toml").write_text(PLANT)
    assert main(["run", "-c", str(tmp_path / "ok.toml"), "--metrics", "nohost",
                 "--duration", "0.1", "--quiet"]) == 2
    assert main(["run", "-c", str(tmp_path / "ok.toml"), "--opcua", "opc.tcp://127.0.0.1:0",
                 "--duration", "0.1", "--quiet"]) == 2


def test_missing_extra_names_it(monkeypatch):
    import sys
    from controller.north import need
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(UserError, match=r"pip install 'greenedge\[scada\]'"):
        need("prometheus_client", "--metrics")
