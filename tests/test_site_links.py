"""The site level's links with three edges (issue 18, "Tests": link loss).

Three GreenEdge edge services, each its own process (tests/edge_runner.py:
the fake line, plant time at SPEEDUP), `boiler` and `scrubber` on the site
broker directly, `compressor` on its own local mosquitto bridged to it (the
bridge's notifications on the STATE topic, kept local); the site host
(PrimaryHost) in-process; the site mosquitto and PostgreSQL of
tests/test_site.py.

What each edge published is counted on the edge's side: the runner records
every message the edge hands to paho, with paho's return code. A client on
the site broker cannot see what an edge published while that broker was down
(a direct edge buffers it and forwards it later, flagged historical; the
bridged edge, told by its bridge, does the same), so the edge's own record is
the reference, compared key by key (node, device, metric, timestamp) with
PostgreSQL; the edge's counters (buffered, sent historical) must agree with it.

1. The site broker killed (SIGKILL: a crash or a power cut; a SIGTERM makes
   mosquitto deliver every client's will as it shuts down, the host's STATE
   offline to the edges and their NDEATHs back, and dead is then right) for
   OUTAGE_PLANT_S of plant time and started again on the same port: while it
   is down the site view marks every edge stale, never dead; on return every
   value each edge published lands once, with its value and original
   timestamp, the buffered ones sent oldest first. The one exception, and
   counted: a message handed to the socket in the IN_FLIGHT_MS before the
   link died, lost with the broker (data is QoS 0 in Sparkplug; the edge
   cannot know).
2. One edge process killed with SIGKILL: the broker publishes its will
   (NDEATH), the site host marks it dead and records one NDEATH event; the
   other two stay online and fresh."""

import base64
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from pysparkplug._protobuf import Payload

from tests.test_site import (EDGE, GROUP, REPORTER_PW, ROOT, SITE, SPEEDUP, WRITER_PW,
                             LocalBroker, SiteBroker, n_events, pg, until, value_of,  # noqa: F401
                             writer)

NODES = ("boiler", "compressor", "scrubber")
BRIDGED = "compressor"       # behind its own local mosquitto, bridged to the site broker
KILLED = "scrubber"          # killed with SIGKILL at the end
OUTAGE_PLANT_S = 120.0
IN_FLIGHT_MS = 2000      # a message handed to the socket this long before a link died


class LinkBroker(SiteBroker):
    """The site broker of tests/test_site.py with a user for the third edge
    (the ACL is by pattern: each edge publishes only under its own node id)."""
    USERS = tuple((u, u + "-secret") for u in NODES + ("site", "ops"))


class BridgedBroker(LocalBroker):
    """The edge PC's mosquitto of tests/test_site.py, its bridge's
    notifications on the primary host's STATE topic and kept local: 0 when the
    link to the site broker is down (the edge buffers), 1 when it is up."""

    def __init__(self, tmp, site, node):
        super().__init__(tmp, site, node)
        with (tmp / "mosquitto.conf").open("a") as f:
            f.write("notification_topic spBv1.0/STATE/site\nnotifications_local_only true\n")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = LinkBroker(tmp_path_factory.mktemp("site-mosquitto"))
    b.start()
    try:
        yield b
    finally:
        b.stop()


def published(d):
    """[(wall ms, topic, Payload)] of every BIRTH/DATA message the edge in d
    handed to paho and paho took (rc 0), in the order it sent them."""
    out = []
    for line in (d / "published.jsonl").read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:     # the last line of a process killed while writing it
            continue
        if r["rc"] == 0 and r["t"].split("/")[2] in ("NBIRTH", "DBIRTH", "NDATA", "DDATA"):
            out.append((r["ms"], r["t"], Payload.FromString(base64.b64decode(r["p"]))))
    return out


def sent_keys(recs):
    """{(device, metric, ts_ms): (value, [wall ms of each message that carried it])};
    a sample a birth repeats has the same key (its own timestamp): one row."""
    out = {}
    for ms, topic, p in recs:
        parts = topic.split("/")
        dev = parts[4] if len(parts) > 4 else ""
        for m in p.metrics:
            k = (dev, m.name, m.timestamp or p.timestamp)
            v, walls = out.get(k, (None, []))
            out[k] = (value_of(m) if v is None else v, walls + [ms])
    return out


def stored(pg, node):
    """{(device, metric, ts_ms): (value, historical)} of that node in PostgreSQL."""
    with writer(pg) as c:
        rows = c.execute("SELECT device, metric, (extract(epoch FROM time) * 1000)::bigint, "
                         "value, historical FROM greenedge.metrics WHERE node = %s",
                         (node,)).fetchall()
    return {(d, m, t): (v, h) for d, m, t, v, h in rows}


def test_three_edges_site_broker_outage_and_killed_edge(pg, broker, tmp_path):  # noqa: F811
    from controller.site.cli import writer_factory
    from controller.site.config import load_site
    from controller.site.host import PrimaryHost
    shutil.copy(broker.tmp / "ca.pem", tmp_path / "ca.pem")
    (tmp_path / "site.toml").write_text(SITE % {"mq": broker.port, "pg": pg.port,
                                                "wpw": WRITER_PW, "rpw": REPORTER_PW})
    scfg = load_site(tmp_path / "site.toml")
    host = PrimaryHost(scfg, writer_factory(scfg)).start()
    (tmp_path / "local").mkdir()
    local = BridgedBroker(tmp_path / "local", broker, BRIDGED)
    procs, out, views = {}, {}, []
    status = lambda node: host.status()["nodes"].get("%s/%s" % (GROUP, node), {})  # noqa: E731

    def wait(cond, what, timeout_s):
        try:
            until(cond, "", timeout_s)
        except AssertionError:
            raise AssertionError("%s: %s" % (what, host.status()["nodes"])) from None

    def lost(node, windows, before_ms=float("inf")):
        """Keys the edge published before before_ms (wall) that PostgreSQL
        lacks, outside the windows in which a message can be lost in flight."""
        have = stored(pg, node)
        recs = [r for r in published(tmp_path / node) if r[0] < before_ms]
        return [k for k, (_, walls) in sent_keys(recs).items()
                if k not in have and not all(any(a <= w <= b for a, b in windows)
                                             for w in walls)]
    try:
        assert host.connected.wait(20), "the site host never connected"
        local.start()
        for node in NODES:
            d = tmp_path / node
            d.mkdir()
            shutil.copy(broker.tmp / "ca.pem", d / "ca.pem")
            text = EDGE % {"node": node, "port": broker.port}
            if node == BRIDGED:
                text = text.replace("mqtts://127.0.0.1:%d" % broker.port,
                                    "mqtt://127.0.0.1:%d" % local.port)
            (d / "plant.toml").write_text(text)
            procs[node] = subprocess.Popen(
                [sys.executable, "-m", "tests.edge_runner", str(d), str(SPEEDUP)],
                cwd=str(ROOT), stdout=subprocess.PIPE, stderr=open(d / "stderr", "w"),
                text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        wait(lambda: all(status(n).get("online") for n in NODES),
             "not every edge came online at the site host", 90.0)
        wait(lambda: all(sum(1 for k in stored(pg, n) if k[:2] == ("fan1", "process_pv")) >= 10
                         for n in NODES), "no steady data from every edge", 60.0)

        # 1. the site broker gone for 2 minutes of plant time
        t_stop = time.monotonic()
        out["t_stop_ms"] = int(time.time() * 1000)
        broker.proc.kill()      # a crash or a power cut: no will is delivered
        broker.proc.wait(10)
        broker.proc = None
        wait(lambda: all(status(n).get("stale") for n in NODES),
             "the host never marked every edge stale", 30.0)
        out["to_stale_s"] = round(time.monotonic() - t_stop, 1)
        while time.monotonic() < t_stop + OUTAGE_PLANT_S / SPEEDUP:
            views.append({n: dict(status(n)) for n in NODES})
            time.sleep(0.5)
        broker.start()
        out["outage_s"] = round(time.monotonic() - t_stop, 1)
        out["t_back_ms"] = int(time.time() * 1000)
        t_back = time.monotonic()
        wait(lambda: all(status(n).get("online") and not status(n).get("stale")
                         for n in NODES), "the edges never came back fresh", 60.0)
        out["to_fresh_s"] = round(time.monotonic() - t_back, 1)
        window = [(out["t_stop_ms"] - IN_FLIGHT_MS, out["t_back_ms"])]
        fresh_ms = int(time.time() * 1000)     # what they sent until they were back
        for n in NODES:
            wait(lambda: not lost(n, window, fresh_ms), "%s: values published never "
                 "reached PostgreSQL" % n, 60.0)
        out["to_complete_s"] = round(time.monotonic() - t_back, 1)

        # 2. one edge process killed: its will (NDEATH) through the broker
        out["t_kill_ms"] = int(time.time() * 1000)
        k0 = time.monotonic()
        procs[KILLED].kill()
        procs[KILLED].wait(10)
        wait(lambda: status(KILLED).get("online") is False,
             "the host never marked the killed edge dead", 30.0)
        out["to_dead_s"] = round(time.monotonic() - k0, 1)
        wait(lambda: n_events(pg, KILLED, "NDEATH", out["t_kill_ms"] / 1000 - 1) == 1,
             "no NDEATH event in PostgreSQL for the killed edge", 30.0)
        others = {n: dict(status(n)) for n in NODES if n != KILLED}
        for n in NODES:
            if n != KILLED:
                procs[n].send_signal(signal.SIGTERM)
                so, _ = procs[n].communicate(timeout=60)
                assert procs[n].returncode == 0, (tmp_path / n / "stderr").read_text()[-2000:]
                out[n] = json.loads(so)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)
        host.stop()
        local.stop()
        if broker.proc is None:
            broker.start()
    st = host.status()

    # stale, never dead, all through the outage
    assert len(views) > 10, views
    for v in views:
        assert all(v[n]["online"] is True and v[n]["stale"] is True for n in NODES), v
    # each edge's every value in PostgreSQL with its timestamp and value, but
    # for messages in flight when the broker died (QoS 0 as Sparkplug has
    # data: the edge cannot know) and when the killed edge died
    figures = {}
    for n in NODES:
        recs = published(tmp_path / n)
        sent, got = sent_keys(recs), stored(pg, n)
        windows = [(out["t_stop_ms"] - IN_FLIGHT_MS, out["t_back_ms"])]
        if n == KILLED:
            windows.append((out["t_kill_ms"] - IN_FLIGHT_MS, out["t_kill_ms"] + 10 ** 6))
        assert set(got) <= set(sent), (n, sorted(set(got) - set(sent))[:5])
        assert lost(n, windows) == [], n
        assert {k: v for k, (v, _) in got.items()} == {k: sent[k][0] for k in got}, n
        # store-and-forward: buffered through the outage, sent oldest first, flagged
        hist = {}
        for _, topic, p in recs:
            for m in p.metrics:
                if m.is_historical:
                    hist.setdefault((tuple(topic.split("/")[4:]), m.name), []).append(m.timestamp)
        assert all(ts == sorted(ts) for ts in hist.values()), n
        if n != KILLED:       # its own counters say the same as its record
            es = out[n]
            assert es["buffer_rows"] == 0 and es["dropped"] == 0 and es["unsent"] == 0, es
            assert es["sent"]["historical"] == es["buffered"] == sum(
                len(ts) for ts in hist.values()), es
        ts = sorted(t for k, (_, h) in got.items() for t in [k[2]] if h)
        assert ts and ts[0] <= out["t_stop_ms"] + 3000 and ts[-1] >= out["t_back_ms"] - 3000, n
        pv = sorted(k[2] for k in got if k[:2] == ("fan1", "process_pv"))
        assert max(b - a for a, b in zip(pv, pv[1:])) < 3000, n      # no hole in the trend
        gone = [max(sent[k][1]) for k in set(sent) - set(got)]
        figures[n] = {"rows": len(got), "historical": len(ts),
                      "lost_in_flight": sum(1 for w in gone if w <= out["t_back_ms"]),
                      "lost_when_killed": sum(1 for w in gone if w > out["t_back_ms"])}
    assert st["gaps"] == 0 and st["db_errors"] == 0 and st["bad"] == 0, st
    # the killed edge: dead, one NDEATH; the others online and fresh
    assert all(v["online"] and not v["stale"] for v in others.values()), others
    print("\nsite links: %s\n%s" % (json.dumps(figures), json.dumps(
        {k: v for k, v in out.items() if k.endswith("_s")})))
