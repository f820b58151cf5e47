"""`greenedge site --hmi HOST:PORT`: the site HMI (read-only but for edge commands).

The edge HMI's server (controller/north/hmi/server.py) with the site host as
its data source instead of a service's hub: the same users file, sessions,
CSRF check, lock-out, security headers and bind rules (loopback by default;
TLS and users otherwise). Pages: /overview (each area: its edges with
online/stale/dead and the site KPIs of `greenedge site report` over the last
24 h: energy, baseline, saving, CO2, cost, active alarms, emission hourly
means per stack; store.site_kpis, at most every KPI_EVERY_S), an edge's latest values
(quality and age) from the metrics table, one metric's raw trend (/api/trend).
Values come from PostgreSQL on the read-only reporter connection ([database]
report_dsn) in a worker thread; the page polls the API every 2 s.

Commands (POST /api/edge/<group>/<node>/command {"metric", "value"[, "device"]}):
the session's role checked against the command gate's own table (gate.NEEDS:
a mode, set point or manual output needs operator), the CSRF token by the
shared guard, then one NCMD (node metric) or DCMD (device metric) on the
site host's own session (PrimaryHost.publish_command: the site user's broker
ACL), a "command" event in the site's events table (a refusal here a
"command_refused" one). The answer is "sent" once the site broker has it:
the edge decides ([mqtt] writable, then its gate with [mqtt] command_role),
and publishes no refusal; what it did shows as the metric's next value. Any
other state-changing route (POST /api/edges/...) answers 403 read-only.
"""

import asyncio
import datetime as dt
import json
import logging
import math
import threading
import time
from pathlib import Path

from controller.north.hmi import server
from controller.runtime.gate import NEEDS, ROLES

log = logging.getLogger("greenedge.site.hmi")

SITE_STATIC = server.STATIC / "site"
KPI_EVERY_S = 10.0   # the 24 h site KPIs are recomputed at most this often, not per poll
READ_ONLY = ("the site HMI is read-only here: a command to an edge goes by POST "
             "/api/edge/<group>/<node>/command, through that edge's command gate")
PUBACK_S = 10.0      # how long a command waits for the site broker's PUBACK


class SiteHmi(server.HmiServer):
    """host: a PrimaryHost (status()); report: a callable returning a new
    read-only DB connection, or None (no values, trends or energy)."""

    def __init__(self, host, cfg, hmi, report=None, state_dir=None):
        self.site, self.site_cfg, self.report = host, cfg, report
        self._web(hmi, "--hmi", Path(state_dir or ".") / "site_hmi_sessions.json")
        self._db_lock = threading.Lock()
        self._conn = None
        self._kpi = None             # (monotonic s, site_kpis) of the last computation

    async def _main(self):
        runner = await self._listen()
        log.info("site HMI on %s", self.url)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            self._save_sessions()
            await runner.cleanup()
            if self._conn is not None:
                self._conn.close()

    def _app(self):
        app = self._auth_app()
        r = app.router
        r.add_get("/overview", self.page_site)
        r.add_get("/edge", self.page_site)
        r.add_get("/api/site", self.api_site)
        r.add_get("/api/edges/{group}/{node}", self.api_edge)
        r.add_get("/api/trend", self.api_trend)
        r.add_post("/api/edge/{group}/{node}/command", self.api_command)
        r.add_post("/api/edges/{tail:.*}", self.api_refuse)
        return app

    async def page_site(self, request):
        return self.web.FileResponse(SITE_STATIC / "site.html")

    async def api_session(self, request):
        s = request["session"]
        why = _role_refusal(s.role, "mode")
        return server._json(self.web, {"user": s.user, "role": s.role, "csrf": s.csrf,
                                       "site": self.site_cfg["host_id"],
                                       "commands": why is None, "commands_refused": why})

    async def api_refuse(self, request):
        return server._json(self.web, {"error": READ_ONLY}, 403)

    async def api_command(self, request):
        """One NCMD/DCMD metric to an edge; 403 for a role the gate would refuse,
        400 a malformed body, 404 an unknown edge or device, 409 an edge not
        online (a command would be lost), 503 the site broker away or silent."""
        web, s = self.web, request["session"]
        g, n = request.match_info["group"], request.match_info["node"]
        b = await server._body(request)
        metric, value, device = b.get("metric"), b.get("value"), b.get("device") or ""
        who = "hmi:%s" % s.user

        def refuse(code, why):
            log.warning("site HMI command by %s (%s) to %s/%s refused: %s", who, s.role, g, n,
                        why)
            self.site._event(g, n, device if isinstance(device, str) else "", "command_refused",
                             "%s (%s): %.200r = %.200r: %s" % (who, s.role, metric, value, why))
            return server._json(web, {"result": "refused", "error": why}, code)
        if not isinstance(metric, str) or not metric or len(metric) > 200 \
                or any(c in metric for c in "\x00+#") or metric.startswith("Node Control/"):
            return refuse(400, "metric: the edge's metric name (Loops/<loop>/Mode, ... or a "
                          "device point with \"device\"), got %r" % (metric,))
        if not isinstance(device, str) or any(c in device for c in "\x00/+#"):
            return refuse(400, "device: a Sparkplug device id, got %r" % (device,))
        if not _value_ok(value):
            return refuse(400, "value: a string, a boolean or a finite number, got %r"
                          % (value,))
        why = _role_refusal(s.role, _kind(metric, device))
        if why is not None:
            return refuse(403, why)
        node = self.site.status()["nodes"].get("%s/%s" % (g, n))
        if node is None:
            return refuse(404, "no edge %s/%s" % (g, n))
        if device and device not in node["devices"]:
            return refuse(404, "edge %s/%s has no device %r" % (g, n, device))
        if not node["online"] or node["stale"]:
            return refuse(409, "edge %s/%s is %s: a command now would be lost"
                          % (g, n, "stale (its link is down)" if node["online"] else "dead"))
        if not self.site.connected.is_set():
            return refuse(503, "the site host is not connected to the site broker")
        info = self.site.publish_command(g, n, device, metric, value, who)
        ok = info.rc == 0 and await asyncio.get_running_loop().run_in_executor(
            None, _wait_published, info)
        if not ok:
            return server._json(web, {"result": "not sent", "error": "the site broker did not "
                                      "take the command in %.0f s" % PUBACK_S}, 503)
        log.info("site HMI command by %s (%s): %s/%s %s%s = %r sent", who, s.role, g, n,
                 device + "/" if device else "", metric, value)
        return server._json(web, {
            "result": "sent", "edge": "%s/%s" % (g, n), "device": device, "metric": metric,
            "value": value, "message": "DCMD" if device else "NCMD",
            "note": "the edge decides ([mqtt] writable, its command gate); it publishes no "
                    "refusal: the metric's next value from the edge is its answer"})

    # ---- data ----------------------------------------------------------------------------
    def _query(self, fn):
        if self.report is None:
            return None
        with self._db_lock:
            for attempt in (0, 1):
                try:
                    if self._conn is None:
                        self._conn = self.report()
                    return fn(self._conn)
                except Exception as e:
                    log.warning("site HMI database: %s", e)
                    try:
                        self._conn.close()
                    except Exception:
                        pass
                    self._conn = None
            return None

    def _kpis(self):
        """The site report (store.site_kpis) over the last 24 h; None without a database."""
        from controller.site import store as st
        k = self._kpi
        if k is not None and time.monotonic() - k[0] < KPI_EVERY_S:
            return k[1]
        now = dt.datetime.now(dt.timezone.utc)
        r = self._query(lambda c: st.site_kpis(c, now - dt.timedelta(hours=24), now,
                                               self.site_cfg))
        if r is not None:
            self._kpi = (time.monotonic(), r)
        return r

    def site_view(self):
        s = self.site.status()
        k = self._kpis() or {}
        per_node = {n["node"]: n for n in k.get("nodes", ())}
        per_area = {a["area"]: a for a in k.get("areas", ())}
        areas = {a: [] for a in per_area}
        for key, n in sorted(s["nodes"].items()):
            group, node = key.split("/", 1)
            state = "dead" if not n["online"] else "stale" if n["stale"] else "online"
            kp = per_node.get(node, {})
            areas.setdefault(self.site_cfg["areas"].get(node, node), []).append(
                {"group": group, "node": node, "state": state,
                 "devices": {d: ("online" if up else "dead") for d, up in n["devices"].items()},
                 "energy_kwh_24h": kp.get("energy_kwh"), "co2_kg_24h": kp.get("co2_kg"),
                 "active_alarms": kp.get("active_alarms")})
        out = []
        for a, edges in sorted(areas.items()):
            kp = dict(per_area.get(a, {}))
            alarms = kp.pop("alarms", [])
            kp.pop("nodes", None)
            kp.pop("area", None)
            out.append({"area": a, "edges": edges, "kpis": kp or None, "alarms": alarms,
                        "emissions": [e for e in k.get("emissions", ()) if e["area"] == a]})
        return {"site": self.site_cfg["host_id"], "connected": s["connected"],
                "now": time.time(), "db": self.report is not None,
                "kpis": None if not k else {"from": k["from"], "to": k["to"],
                                            "currency": k["currency"], "total": k["total"]},
                "areas": out}

    def edge_view(self, group, node):
        from controller.site import store as st
        q = """SELECT DISTINCT ON (device, metric) device, metric, value, text, quality,
                      time FROM {s}.metrics WHERE grp = %s AND node = %s
                      AND time > now() - interval '1 day'
               ORDER BY device, metric, time DESC""".format(s=st.SCHEMA)

        def run(c):
            with c.cursor() as cur:
                cur.execute(q, (group, node))
                got = cur.fetchall()
            c.rollback()
            return got
        got = self._query(run)
        now = dt.datetime.now(dt.timezone.utc)
        n = self.site.status()["nodes"].get("%s/%s" % (group, node))
        return {"group": group, "node": node,
                "state": None if n is None else ("dead" if not n["online"] else
                                                 "stale" if n["stale"] else "online"),
                "values": [{"device": d, "metric": m, "value": v if t is None else t,
                            "quality": q_, "age_s": (now - ts).total_seconds()}
                           for d, m, v, t, q_, ts in got or ()]}

    def trend_view(self, group, node, device, metric, seconds):
        """Raw samples of one metric over the last `seconds` (at most 5,000, the newest)."""
        from controller.site import store as st
        q = """SELECT time, value FROM {s}.metrics WHERE grp = %s AND node = %s AND
                      device = %s AND metric = %s AND value IS NOT NULL
                      AND time > now() - %s * interval '1 second'
               ORDER BY time DESC LIMIT 5000""".format(s=st.SCHEMA)

        def run(c):
            with c.cursor() as cur:
                cur.execute(q, (group, node, device, metric, seconds))
                got = cur.fetchall()
            c.rollback()
            return got
        got = self._query(run)
        return None if got is None else [[t.timestamp(), v] for t, v in reversed(got)]

    async def api_trend(self, request):
        """GET /api/trend?group=&node=&device=&metric=&range=1h|8h|24h"""
        q = request.query
        rng = server.RANGES.get(q.get("range", "1h"))
        if rng is None or not q.get("node") or not q.get("metric"):
            return server._json(self.web, {"error": "expected group, node, device, metric "
                                           "and range (1h, 8h, 24h)"}, 400)
        pts = await asyncio.get_running_loop().run_in_executor(
            None, self.trend_view, q.get("group", ""), q["node"], q.get("device", ""),
            q["metric"], rng)
        if pts is None:
            return server._json(self.web, {"error": "the site database is not reachable"}, 503)
        return server._json(self.web, {"points": pts})

    async def api_site(self, request):
        v = await asyncio.get_running_loop().run_in_executor(None, self.site_view)
        return server._json(self.web, v)

    async def api_edge(self, request):
        g, n = request.match_info["group"], request.match_info["node"]
        if ("%s/%s" % (g, n)) not in self.site.status()["nodes"]:
            return server._json(self.web, {"error": "no edge %s/%s" % (g, n)}, 404)
        v = await asyncio.get_running_loop().run_in_executor(None, self.edge_view, g, n)
        return server._json(self.web, v)


def _kind(metric, device):
    """The command gate's kind for an NCMD/DCMD metric (as the edge maps it,
    controller/north/sparkplug.py: a set point, else a mode or manual output)."""
    return "setpoint" if not device and "/SP/" in metric else "mode"


def _role_refusal(role, kind):
    """None if the gate's role table lets `role` do `kind`, else its reason."""
    if role not in ROLES or ROLES.index(role) < ROLES.index(NEEDS[kind]):
        return "role %s may not change %s (needs %s)" % (role, kind, NEEDS[kind])
    return None


def _value_ok(v):
    """A string (no NUL, at most 200 characters), a boolean or a finite number."""
    if isinstance(v, str):
        return len(v) <= 200 and "\x00" not in v
    return isinstance(v, (bool, int, float)) and (isinstance(v, bool) or math.isfinite(v))


def _wait_published(info):
    try:
        info.wait_for_publish(PUBACK_S)
    except (RuntimeError, ValueError):   # paho: not queued (the connection went)
        return False
    return info.is_published()
