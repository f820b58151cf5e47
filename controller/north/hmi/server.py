"""The HMI's web server (aiohttp) on its own thread and asyncio loop.

Size (658 lines): every page's and the JSON API's routes in one table, each with its
auth and CSRF check beside it.

It reads the data hub (one subscription, drained once a tick: the fastest
loop group's period, at least 1 s of wall time, so no value is pushed more
than once a second) and the alarm engine's rows; it changes the plant only
through the command gate (who "hmi:<user>", the user's role). Historian reads
(trends, audit, export) run on a read-only connection in a worker thread.
Nothing here is called by the control cycle, and nothing here waits on it:
an accepted command's ticket is waited for in a worker thread.

Routes: the pages (/login, /overview, /loops, /alarms, /trends, /devices,
/audit, /export: one shell, app.js draws each), /static/<file>, and the JSON
API under /api (docs/hmi.md).
"""

import asyncio
import json
import logging
import math
import ssl
import threading
import time
from collections import deque
from pathlib import Path

from controller.errors import UserError
from controller.north.hmi import auth, trend, views

log = logging.getLogger("greenedge.hmi")
STATIC = Path(__file__).parent / "static"
PAGES = ("overview", "loops", "alarms", "trends", "devices", "audit", "export")
RANGES = {"1h": 3600.0, "8h": 8 * 3600.0, "24h": 24 * 3600.0}


class HmiServer:
    """start() returns once it listens (or raises UserError); stop() joins it."""

    def __init__(self, svc, hmi):
        self.svc = svc
        self.cfg, self.hub, self.gate = svc.cfg, svc.hub, svc.gate
        self.stale_limits = views.stale_limits(self.cfg)
        self.live_table = views.live_table(self.cfg)
        self._web(hmi, "hmi", svc.cfg.state_dir / "hmi_sessions.json")
        groups = list(self.cfg.groups.values()) or [1.0]
        self.tick_s = max(1.0, min(groups) / svc.clock.speedup)
        self.frame = {}          # the live frame (see _live)
        self._since = None       # (energy_kwh, plant s) when first seen: the saving's start
        self.seq = 0             # bumped each tick the frame changed
        self.audit_ring = deque(maxlen=500)
        self.last_event = {}     # device -> its last fault-like event (devices page)
        self.streams = 0         # open live streams
        self.pushed = 0          # values pushed to streams
        self.errors = 0          # ticks that failed (logged)

    def _web(self, hmi, what, sessions_path):
        """What the edge and the site HMI share: the bind rule (checked again
        here), aiohttp, the users file, TLS, the sessions (carried over a
        restart in sessions_path) and the server thread's state."""
        from controller.north import parse_hostport
        from controller.north.hmi.config import check_bind
        from controller.north.users import Users
        self.hmi = hmi
        self.host = check_bind(hmi, what)
        _, self.port = parse_hostport(hmi["listen"], "--hmi")
        try:
            import aiohttp.web
        except ImportError:
            raise UserError("--hmi needs the Python package aiohttp: "
                            "pip install 'greenedge[hmi]'") from None
        self.web = aiohttp.web
        self.users = Users(hmi["users"])
        self.tls = None
        if hmi["certificate"] is not None:
            self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                self.tls.load_cert_chain(str(hmi["certificate"]), str(hmi["private_key"]))
            except (OSError, ssl.SSLError) as e:
                raise UserError("--hmi: TLS certificate %s / key %s: %s"
                                % (hmi["certificate"], hmi["private_key"], e))
        self.sessions = auth.Sessions(60.0 * hmi["session_min"])
        self.sessions_path = sessions_path
        self._load_sessions()
        self._thread = self._loop = self._stop = None
        self._ready = threading.Event()
        self._error = None
        self.url = None

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self, timeout_s=60.0):
        self._thread = threading.Thread(target=self._run, name="greenedge-hmi", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            raise UserError("--hmi %s: %s" % (self.hmi["listen"], self._error or "no start"))
        return self

    def stop(self):
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30.0)

    def _run(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except Exception as e:
            if not self._ready.is_set():
                self._error = "%s: %s" % (type(e).__name__, e)
            else:
                log.exception("HMI server failed")
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self):
        runner = await self._listen()
        log.info("HMI on %s", self.url)
        sub = self.hub.subscribe("hmi", ("device", "loop", "kpi", "status", "event", "audit",
                                         "alarm"), maxlen=5000)
        self._ready.set()
        try:
            await self._live(sub)
        finally:
            sub.close()
            self._save_sessions()
            await runner.cleanup()

    async def _listen(self):
        """Serve _app() on host:port (TLS when configured); self.url, the runner."""
        web = self.web
        self._stop = asyncio.Event()
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.tls)
        await site.start()
        self.port = runner.addresses[0][1]
        self.url = "%s://%s:%d" % ("https" if self.tls else "http",
                                   "[%s]" % self.host if ":" in self.host else self.host,
                                   self.port)
        return runner

    # ---- the live frame ------------------------------------------------------------------
    async def _live(self, sub):
        dev = dict(self.hub.latest("device"))
        loops = dict(self.hub.latest("loop"))
        kpis = self.hub.latest("kpi").get("kpis")
        status = self.hub.latest("status").get("service")
        alarms_seq = 0
        prev = None
        t_err = -math.inf
        while not self._stop.is_set():
            try:
                prev, alarms_seq, dev, loops, kpis, status = self._tick(
                    sub, prev, alarms_seq, dev, loops, kpis, status)
            except Exception:   # a bad value must not end the HMI: report once a minute
                self.errors += 1
                if time.monotonic() - t_err > 60.0:
                    t_err = time.monotonic()
                    log.exception("HMI frame failed (%d so far); going on", self.errors)
            try:
                await asyncio.wait_for(self._stop.wait(), self.tick_s)
            except asyncio.TimeoutError:
                pass

    def _tick(self, sub, prev, alarms_seq, dev, loops, kpis, status):
        """One tick: drain the hub, build the frame and its delta."""
        state, stream = sub.drain()
        for (topic, key), v in state.items():
            if topic == "device":
                dev[key] = v
            elif topic == "loop":
                loops[key] = v
            elif topic == "kpi":
                kpis = v
            elif topic == "status":
                status = v
        for topic, item in stream:
            if topic == "audit":
                self.audit_ring.appendleft(item)
            elif topic == "alarm":
                alarms_seq += 1
            elif topic == "event" and item.get("source") in self.cfg.devices \
                    and item.get("kind") not in ("up", "start", "stop"):
                self.last_event[item["source"]] = {"t_s": item.get("t_s"),
                                                   "kind": item.get("kind"),
                                                   "text": item.get("text")}
        now = time.time()
        plant_s = self.svc.clock.plant_s()
        e = (kpis or {}).get("energy_kwh")
        if self._since is None and isinstance(e, (int, float)) and math.isfinite(e):
            self._since = (float(e), plant_s)
        counts = self.svc.alarms.summary()["states"]    # the counts only, no row per alarm
        points, times = views.live_points(self.cfg, dev, now, self.live_table)
        self.frame = {
            "now": now, "plant_s": plant_s, "points": points, "clocks": times,
            "devices": {dn: bool(v.get("up")) for dn, v in dev.items()},
            "loops": {ln: views.loop_state(v) for ln, v in loops.items()},
            "kpi": views.kpi_view(self.cfg, kpis, self.hmi, self._since, plant_s),
            "alarms": {"states": counts, "seq": alarms_seq},
        }
        self._dev, self._loops, self._status = dev, loops, status
        self._delta(prev)
        prev = self.frame
        self.sessions.prune(time.time())
        if self.sessions.changed or time.time() - self._t_saved > 60.0:
            self._save_sessions()
        self.seq += 1
        return prev, alarms_seq, dev, loops, kpis, status

    # ---- sessions over a restart -----------------------------------------------------------
    def _load_sessions(self):
        self._t_saved = time.time()
        try:
            data = json.loads(self.sessions_path.read_text())
        except (OSError, ValueError):
            return
        users = self.users.users
        n = self.sessions.load(data, lambda u: (users.get(u) or {}).get("role"), time.time())
        if n:
            log.info("HMI: %d sessions carried over from the last run", n)

    def _save_sessions(self):
        """state_dir/hmi_sessions.json (0600): hashes of session ids, never the ids."""
        import os
        self._t_saved = time.time()
        self.sessions.changed = False
        tmp = self.sessions_path.with_suffix(".tmp")
        try:
            self.sessions_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(self.sessions.dump(), f)
            os.replace(tmp, self.sessions_path)
        except OSError as e:
            log.warning("HMI: sessions not saved (%s): a restart logs everyone out", e)

    # ---- the application -----------------------------------------------------------------
    def _auth_app(self):
        """The application with what every HMI serves alike: the guard
        (sessions, CSRF, headers), login, logout, the session, the static files."""
        app = self.web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        r = app.router
        r.add_get("/", self.page_root)
        r.add_get("/login", self.page_login)
        r.add_static("/static/", STATIC, follow_symlinks=False, show_index=False)
        r.add_post("/api/login", self.api_login)
        r.add_post("/api/logout", self.api_logout)
        r.add_get("/api/session", self.api_session)
        return app

    def _app(self):
        app = self._auth_app()
        r = app.router
        for p in PAGES:
            r.add_get("/" + p, self.page_app)
        r.add_get("/api/live", self.api_live)
        r.add_get("/api/stream", self.api_stream)
        r.add_get("/api/overview", self.api_overview)
        r.add_get("/api/loops", self.api_loops)
        r.add_post("/api/loops/{loop}/mode", self.api_mode)
        r.add_post("/api/loops/{loop}/setpoint", self.api_setpoint)
        r.add_post("/api/loops/{loop}/param", self.api_param)
        r.add_get("/api/alarms", self.api_alarms)
        r.add_post("/api/alarms/{alarm}/{action}", self.api_alarm_action)
        r.add_get("/api/tags", self.api_tags)
        r.add_get("/api/trend", self.api_trend)
        r.add_get("/api/trend.svg", self.api_trend_svg)
        r.add_get("/api/devices", self.api_devices)
        r.add_get("/api/audit", self.api_audit)
        r.add_get("/api/export.csv", self.api_export)
        return app

    def _session(self, request, use=True):
        """The request's session; use=False: a check that does not count as the
        user's activity (the live stream and its automatic reconnects)."""
        f = self.sessions.get if use else self.sessions.peek
        return f(request.cookies.get(auth.COOKIE), time.time())

    async def _guard_impl(self, request, handler):
        web = self.web
        path = request.path
        public = path in ("/login", "/api/login", "/") or path.startswith("/static/")
        s = None if public else self._session(request, use=path != "/api/stream")
        if not public and s is None:
            if path.startswith("/api/"):
                return _json(web, {"error": "not logged in"}, 401)
            raise web.HTTPFound("/login")
        if request.method not in ("GET", "HEAD"):
            if request.content_type != "application/json":
                return _json(web, {"error": "expected a JSON body (application/json)"}, 415)
            if s is not None and not s.csrf_ok(request.headers.get("X-CSRF-Token")):
                return _json(web, {"error": "missing or wrong CSRF token (X-CSRF-Token)"}, 403)
        request["session"] = s
        try:
            resp = await handler(request)
        except web.HTTPException as e:
            self._headers(path, e)
            raise
        return self._headers(path, resp)

    @staticmethod
    def _headers(path, resp):
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'")
        if path.startswith("/api/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @property
    def _guard(self):
        async def guard(request, handler):
            return await self._guard_impl(request, handler)
        return self.web.middleware(guard)

    # ---- pages ---------------------------------------------------------------------------
    async def page_root(self, request):
        raise self.web.HTTPFound("/overview")

    async def page_login(self, request):
        return self.web.FileResponse(STATIC / "login.html")

    async def page_app(self, request):
        return self.web.FileResponse(STATIC / "app.html")

    # ---- session -------------------------------------------------------------------------
    async def api_login(self, request):
        web = self.web
        body = await _body(request)
        user, pw = body.get("user"), body.get("password")
        if not isinstance(user, str) or not isinstance(pw, str) or len(user) > 64 \
                or len(pw) > 256:
            return _json(web, {"error": "expected {\"user\": ..., \"password\": ...}"}, 400)
        addr = request.remote or "?"
        now = time.time()
        left = self.sessions.locked(user, addr, now)
        if left > 0:
            log.warning("HMI login for %r from %s refused: locked out (%.0f s)", user, addr, left)
            return _json(web, {"error": "too many failed logins: locked out for %.0f s"
                               % left}, 429)
        # the attempt counts before the slow hash (a check in flight counts toward
        # the limit: parallel guesses get no more checks than it) ...
        if not self.sessions.begin(user, addr, now):
            log.warning("HMI login for %r from %s refused: too many failed or pending "
                        "logins", user, addr)
            return _json(web, {"error": "too many failed or pending logins: locked out, "
                               "try again later"}, 429)
        role = None
        try:
            role = await asyncio.get_running_loop().run_in_executor(
                None, self.users.role_of, user, pw)
        finally:
            ok = self.sessions.end(user, addr, role is not None, time.time())
        if role is None:
            log.warning("HMI login failed for %r from %s", user, addr)
            return _json(web, {"error": "wrong user name or password"}, 401)
        if not ok:      # ... and a lock set while it ran refuses a right password
            left = self.sessions.locked(user, addr, time.time())
            log.warning("HMI login for %r from %s refused: locked out while checked (%.0f s)",
                        user, addr, left)
            return _json(web, {"error": "too many failed logins: locked out for %.0f s"
                               % left}, 429)
        s = self.sessions.open(user, role, time.time())
        resp = _json(web, {"user": user, "role": role, "csrf": s.csrf})
        resp.set_cookie(auth.COOKIE, s.id, httponly=True, samesite="Strict",
                        secure=self.tls is not None, path="/")
        log.info("HMI login: %s (%s) from %s", user, role, addr)
        return resp

    async def api_logout(self, request):
        self.sessions.close(request.cookies.get(auth.COOKIE))
        resp = _json(self.web, {"ok": True})
        resp.del_cookie(auth.COOKIE, path="/")
        return resp

    async def api_session(self, request):
        s = request["session"]
        return _json(self.web, {"user": s.user, "role": s.role, "csrf": s.csrf,
                                "service": self.cfg.name, "pages": PAGES})

    # ---- live ------------------------------------------------------------------------------
    def api_frame(self):
        """The frame as the JSON API gives it: each point [value, quality, age_s]
        (its age at the frame's time) instead of its read's clock."""
        f = dict(self.frame)
        if f:
            f["points"] = views.api_points(f["points"], f.pop("clocks"), f["now"])
        return f

    async def api_live(self, request):
        return _json(self.web, self.api_frame())

    def _delta(self, prev):
        """This tick's message for streams that saw the last one (what changed:
        points by tag, their reads' clocks; loops, kpi, alarms whole), encoded
        once for all of them. A point whose value and quality stay is not sent
        again for a new read: its clock's new time is."""
        f = self.frame
        msg = {"now": f["now"], "plant_s": f["plant_s"]}
        old = prev or {}
        for k in ("points", "clocks"):
            was = old.get(k) or {}
            msg[k] = {n: v for n, v in f[k].items() if was.get(n) != v}
        for k in ("devices", "loops", "kpi", "alarms"):
            if old.get(k) != f[k]:
                msg[k] = f[k]
        self._delta_n = len(msg["points"])
        self._delta_msg = _event(msg)

    async def api_stream(self, request):
        """Server-sent events: the first message is the whole frame, each next
        one what changed since the one before (a stream that missed a tick
        gets the whole frame again), one per tick. Points are [value, quality,
        clock], clocks {clock: sample wall s}: the page ages them."""
        web = self.web
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
        await resp.prepare(request)
        seq = None
        self.streams += 1
        try:
            while not self._stop.is_set():
                if self.seq != seq and self.frame:
                    if seq is not None and self.seq == seq + 1:
                        await resp.write(self._delta_msg)
                        self.pushed += self._delta_n
                    else:
                        f = self.frame
                        await resp.write(_event(f))
                        self.pushed += len(f["points"])
                    seq = self.seq
                if self._session(request, use=False) is None:   # logged out, or expired
                    await resp.write(b"event: logout\ndata: {}\n\n")
                    break
                try:
                    await asyncio.wait_for(self._stop.wait(), min(self.tick_s, 1.0) / 4)
                except asyncio.TimeoutError:
                    pass
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.streams -= 1
        return resp

    # ---- overview, loops ---------------------------------------------------------------
    async def api_overview(self, request):
        return _json(self.web, {"areas": views.overview(self.cfg, getattr(self, "_dev", {}),
                                                        None, time.time()),
                                "frame": self.api_frame()})

    async def api_loops(self, request):
        now = time.time()
        out = [views.faceplate(self.cfg, r, getattr(self, "_loops", {}).get(n),
                               getattr(self, "_dev", {}), now, self.stale_limits)
               for n, r in self.svc.loops.items()]
        return _json(self.web, {"loops": out})

    async def _submit(self, request, kind, loop, **args):
        s = request["session"]
        t = self.gate.submit("hmi:%s" % s.user, s.role, kind, loop, **args)
        if t.accepted:
            done = await asyncio.get_running_loop().run_in_executor(None, t.done.wait, 15.0)
            return _json(self.web, {"accepted": True, "applied": done,
                                    "record": _clean(t.record)})
        code = 403 if (t.reason or "").startswith("role ") else 400
        return _json(self.web, {"accepted": False, "error": t.reason,
                                "record": _clean(t.record)}, code)

    async def api_mode(self, request):
        b = await _body(request)
        return await self._submit(request, "mode", request.match_info["loop"],
                                  mode=b.get("mode"), outputs=b.get("outputs"))

    async def api_setpoint(self, request):
        b = await _body(request)
        return await self._submit(request, "setpoint", request.match_info["loop"],
                                  key=b.get("key"), value=b.get("value"))

    async def api_param(self, request):
        b = await _body(request)
        return await self._submit(request, "param", request.match_info["loop"],
                                  name=b.get("name"), value=b.get("value"))

    # ---- alarms ---------------------------------------------------------------------------
    async def api_alarms(self, request):
        rows = self.svc.alarms.rows()
        defs = self.svc.alarms.alarms   # the engine's copies: an engineer's change shows
        for r in rows:
            d = defs[r["id"]].d
            if d.kind == "limit":
                r["limit"] = {"condition": d.condition, "value": getattr(d, d.condition, None),
                              "deadband": d.deadband, "on_delay_s": d.on_delay_s,
                              "point": "%s.%s" % (d.device, d.point)}
        if request.query.get("active"):
            rows = [r for r in rows if r["state"] != "normal"]
        order = {"unacknowledged": 0, "returned_unacknowledged": 1, "acknowledged": 2,
                 "shelved": 3, "suppressed": 4, "normal": 5}
        rows.sort(key=lambda r: (order.get(r["state"], 9), r["priority"], r["id"]))
        return _json(self.web, {"alarms": rows, "plant_s": self.svc.clock.plant_s(),
                                "max_shelve_min": self.cfg.alarms.settings.max_shelve_min})

    async def api_alarm_action(self, request):
        action, alarm = request.match_info["action"], request.match_info["alarm"]
        b = await _body(request)
        if action == "ack":
            return await self._submit(request, "ack", None, alarm=alarm, reason=b.get("reason"))
        if action == "shelve":
            return await self._submit(request, "shelve", None, alarm=alarm,
                                      minutes=b.get("minutes"), reason=b.get("reason"))
        if action == "unshelve":
            return await self._submit(request, "unshelve", None, alarm=alarm)
        if action == "limit":
            return await self._submit(request, "alarm_limit", None, alarm=alarm,
                                      values=b.get("values"))
        return _json(self.web, {"error": "no alarm action %r (ack, shelve, unshelve, limit)"
                                % action}, 404)

    # ---- historian ---------------------------------------------------------------------
    def _tags(self):
        tags = sorted("%s.%s" % (dn, p) for dn, v in getattr(self, "_dev", {}).items()
                      for p in v.get("points", {}))
        tags += sorted("%s.cmd.%s.%s" % (ln, role, p)
                       for ln, v in getattr(self, "_loops", {}).items()
                       for role, c in (v.get("cmds") or {}).items() for p in c)
        return tags

    def _db(self):
        if self.svc.hist is None:
            raise self.web.HTTPServiceUnavailable(
                text=json.dumps({"error": "this service runs without a historian"}),
                content_type="application/json")
        return self.cfg.historian["path"]

    def _range(self, q):
        """(tags, t_from, t_to) from ?tags=a,b&range=1h|8h|24h or &from=&to= (plant s)."""
        web = self.web
        known = set(self._tags())
        tags = [t for t in (q.get("tags") or "").split(",") if t]
        bad = [t for t in tags if t not in known]
        if not tags or bad or len(tags) > 20:
            raise web.HTTPBadRequest(text=json.dumps(
                {"error": "tags: 1..20 of the service's tags (/api/tags); unknown: %s"
                 % ", ".join(bad[:5])}), content_type="application/json")
        now = self.svc.clock.plant_s()
        try:
            if "from" in q or "to" in q:
                t_from, t_to = float(q.get("from", now - 3600.0)), float(q.get("to", now))
            else:
                t_to = now
                t_from = now - RANGES[q.get("range", "1h")]
        except (ValueError, KeyError):
            raise web.HTTPBadRequest(text=json.dumps(
                {"error": "range: 1h | 8h | 24h, or from/to in plant seconds"}),
                content_type="application/json")
        if not (math.isfinite(t_from) and math.isfinite(t_to) and t_from < t_to):
            raise web.HTTPBadRequest(text=json.dumps({"error": "from must be before to"}),
                                     content_type="application/json")
        return tags, t_from, t_to

    async def _in_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def api_tags(self, request):
        return _json(self.web, {"tags": self._tags()})

    def _limits(self, tags):
        defs = list(self.cfg.alarms.defs.values())
        return {t: views.limits_of(self.cfg, defs, t) for t in tags}

    async def api_trend(self, request):
        db = self._db()
        tags, t0, t1 = self._range(request.query)
        data = await self._in_thread(trend.series, db, tags, t0, t1)
        return _json(self.web, {"from": t0, "to": t1, "series": data,
                                "limits": self._limits(tags)})

    async def api_trend_svg(self, request):
        db = self._db()
        tags, t0, t1 = self._range(request.query)
        data = await self._in_thread(trend.series, db, tags, t0, t1)
        body = trend.svg(data, self._limits(tags), t0, t1,
                         title="%s: %.1f h" % (self.cfg.name, (t1 - t0) / 3600.0))
        return self.web.Response(text=body, content_type="image/svg+xml")

    async def api_devices(self, request):
        return _json(self.web, {"devices": views.device_rows(self.cfg, getattr(
            self, "_status", None), self.last_event),
            "lines": (getattr(self, "_status", None) or {}).get("lines", {})})

    async def api_audit(self, request):
        try:
            limit = min(max(int(request.query.get("limit", 200)), 1), 5000)
        except ValueError:
            limit = 200
        if self.svc.hist is not None:
            rows = await self._in_thread(trend.audit, self.cfg.historian["path"], limit)
            # the historian commits once a second: the newest records from the hub first
            seen = {(r["wall"], r["who"], r["kind"]) for r in rows}
            fresh = [_clean(r) for r in self.audit_ring
                     if (r["wall"], r["who"], r["kind"]) not in seen]
            rows = (fresh + rows)[:limit]
        else:
            rows = [_clean(r) for r in list(self.audit_ring)[:limit]]
        return _json(self.web, {"audit": rows})

    async def api_export(self, request):
        db = self._db()
        tags, t0, t1 = self._range(request.query)
        text = await self._in_thread(trend.export_csv, db, tags, t0, t1)
        return self.web.Response(text=text, content_type="text/csv", headers={
            "Content-Disposition": 'attachment; filename="greenedge-export.csv"'})


def _clean(obj):
    """JSON-safe: non-finite numbers are null, tuples lists, other objects text."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


def _event(msg):
    """A stream message of the frame or a delta; its points and clocks are
    JSON-safe already (views.live_points): only the rest is cleaned."""
    out = {k: v if k in ("points", "clocks") else _clean(v) for k, v in msg.items()}
    return ("data: %s\n\n" % json.dumps(out, allow_nan=False)).encode()


def _json(web, obj, status=200):
    return web.Response(text=json.dumps(_clean(obj), allow_nan=False), status=status,
                        content_type="application/json")


async def _body(request):
    from aiohttp import web
    try:
        b = await request.json()
    except ValueError:
        b = None
    if not isinstance(b, dict):
        raise web.HTTPBadRequest(text='{"error": "expected a JSON object"}',
                                 content_type="application/json")
    return b
