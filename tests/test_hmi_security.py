"""The HMI's security with a plain HTTP client against the running service
on the fake line: no state change without a session and its CSRF token,
wrong passwords lock out, path traversal in the static and export routes is
refused, cookies are HttpOnly + SameSite=Strict (+ Secure under TLS), and a
non-loopback bind without TLS is refused."""

import json
import ssl
import urllib.request

import pytest

from controller.errors import UserError
from tests.test_hmi_support import USERS, Client, Rig

USERS_PW = {u: pw for u, (_, pw) in USERS.items()}


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    r = Rig(tmp_path_factory.mktemp("hmisec"))
    try:
        yield r.start()
    finally:
        r.stop()


def audit_count(rig):
    return rig.svc.gate.accepted + rig.svc.gate.refused


def test_no_state_change_without_session_and_csrf(rig):
    before = audit_count(rig)
    body = {"mode": "manual", "outputs": {"drive": {"speed_ref_pct": 40}}}
    anon = Client(rig.url)
    assert anon.json("POST", "/api/loops/fan/mode", body)[0] == 401
    assert anon.json("GET", "/api/loops")[0] == 401
    c = Client(rig.url)
    code, j = c.login("olga")
    assert code == 200 and j["role"] == "operator"
    token = c.csrf
    c.csrf = None                                  # a session, no token
    assert c.json("POST", "/api/loops/fan/mode", body)[0] == 403
    c.csrf = "x" * 43                              # a wrong token
    assert c.json("POST", "/api/loops/fan/mode", body)[0] == 403
    c.csrf = token                                 # a form post (what a cross-site page sends)
    code, _, _ = c.req("POST", "/api/loops/fan/mode", raw=b"mode=manual",
                       headers={"Content-Type": "application/x-www-form-urlencoded",
                                "X-CSRF-Token": token})
    assert code == 415
    assert c.json("POST", "/api/alarms/fan1.down/ack", {}, csrf=False)[0] == 403
    assert audit_count(rig) == before and rig.svc.loops["fan"].manual is None
    # the same session and token do change it
    code, j = c.json("POST", "/api/loops/fan/mode", body)
    assert code == 200 and j["accepted"] and j["applied"]
    assert rig.svc.loops["fan"].manual == {"drive": {"speed_ref_pct": 40.0}}
    code, j = c.json("POST", "/api/loops/fan/mode", {"mode": "auto"})
    assert code == 200 and rig.svc.loops["fan"].manual is None
    # logged out: the cookie is dead
    assert c.json("POST", "/api/logout", {})[0] == 200
    assert c.json("GET", "/api/session")[0] == 401
    assert c.json("POST", "/api/loops/fan/mode", body)[0] == 401


def test_cookie_flags(rig):
    c = Client(rig.url)
    code, _, headers = c.req("POST", "/api/login", {"user": "vic", "password": "viewer-pass"})
    assert code == 200
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie


def test_path_traversal_refused(rig):
    c = Client(rig.url)
    c.login("vic")
    for path in ("/static/../users.toml", "/static/%2e%2e/server.py", "/static/..%2fserver.py",
                 "/static/%2e%2e%2f%2e%2e%2fusers.toml", "/static//etc/passwd",
                 "/static/..%5cserver.py"):
        code, data, _ = c.req("GET", path)
        assert code in (400, 403, 404), (path, code)
        assert b"scrypt" not in data and b"import" not in data, path
    assert c.req("GET", "/static/app.js")[0] == 200
    for tags in ("../../etc/passwd", "fan1.power_kw' OR '1'='1", "/etc/passwd", ""):
        code, j = c.json("GET", "/api/export.csv?tags=%s&range=1h"
                         % urllib.request.quote(tags))
        assert code == 400, (tags, code)
    code, data, h = c.req("GET", "/api/export.csv?tags=fan1.power_kw&range=1h")
    assert code == 200 and data.startswith(b"t_s,tag,value,quality")


def test_wrong_passwords_lock_out(rig):
    c = Client(rig.url)
    for _ in range(5):
        assert c.login("erik", "not-the-password")[0] == 401
    code, j = c.login("erik")                      # the right password, too late
    assert code == 429 and "locked out" in j["error"]
    assert Client(rig.url).login("olga")[0] == 200   # another user from the same address


def test_an_open_stream_does_not_keep_a_session_alive(rig):
    """The live stream checks its session ~4 times a second without counting as
    use: with nothing but the stream open, the session idles out and the
    stream says so (logout event); the cookie is dead afterwards."""
    import time
    idle = rig.hmi.sessions.idle_s
    rig.hmi.sessions.idle_s = 3.0                  # a short session_min
    try:
        c = Client(rig.url)
        assert c.login("olga")[0] == 200
        t0 = time.monotonic()
        lines = []
        with c.op.open(urllib.request.Request(rig.url + "/api/stream"), timeout=10) as resp:
            while time.monotonic() - t0 < 20.0:
                line = resp.readline()
                if not line:
                    break
                lines.append(line)
                if line.startswith(b"event: logout"):
                    break
        took = time.monotonic() - t0
        assert lines and lines[-1].startswith(b"event: logout"), (took, lines[-3:])
        assert any(x.startswith(b"data: {") for x in lines)   # it did stream values first
        assert 2.5 <= took < 10.0, took
        assert c.json("GET", "/api/session")[0] == 401
    finally:
        rig.hmi.sessions.idle_s = idle


def test_parallel_logins_get_no_more_checks_than_the_limit(tmp_path):
    """A password check in flight counts toward the lock-out limit: of 40
    parallel wrong guesses only MAX_FAILS reach the (slow) hash, the right
    password sent while they run is refused, and so is the next login once
    they failed (the reviewer's burst: 40 wrong + the right one had all got
    checked and the right one had got a session)."""
    import collections
    import threading
    import time
    from controller.north.hmi import auth
    r = Rig(tmp_path)
    try:
        r.start()
        users = r.hmi.users
        orig, calls, release, lock = users.role_of, collections.Counter(), threading.Event(), \
            threading.Lock()

        def slow_role_of(user, pw):                # the hash, held until released
            with lock:
                calls[user] += 1
            if user == "olga":
                release.wait(30)
            return orig(user, pw)
        users.role_of = slow_role_of
        codes = collections.Counter()

        def guess(user, pw):
            code, _ = Client(r.url).json("POST", "/api/login", {"user": user, "password": pw})
            with lock:
                codes[(user, code, pw == USERS_PW[user])] += 1
        ts = [threading.Thread(target=guess, args=("olga", "wrong%d" % i)) for i in range(40)]
        for t in ts:
            t.start()
        r.wait(lambda: calls["olga"] == auth.MAX_FAILS
               and codes[("olga", 429, False)] == 40 - auth.MAX_FAILS,
               "the checks beyond the limit were not refused")
        code, j = Client(r.url).login("olga")      # the right one, while they run
        assert code == 429, (code, j)
        release.set()
        for t in ts:
            t.join(30)
        assert codes[("olga", 401, False)] == auth.MAX_FAILS, dict(codes)
        assert calls["olga"] == auth.MAX_FAILS
        code, j = Client(r.url).login("olga")      # locked now
        assert code == 429 and "locked out" in j["error"], (code, j)
        assert calls["olga"] == auth.MAX_FAILS

        # the reviewer's burst as sent: 40 wrong + the right one, all at once
        ts = [threading.Thread(target=guess, args=("erik", p))
              for p in ["wrong%d" % i for i in range(40)] + ["engineer-pass"]]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert calls["erik"] <= auth.MAX_FAILS, (calls, dict(codes))
        assert sum(n for (u, code, _), n in codes.items()
                   if u == "erik" and code != 429) == calls["erik"], dict(codes)
        if codes[("erik", 200, True)] == 0:        # the right one was not among the checked
            assert Client(r.url).login("erik")[0] == 429
    finally:
        r.stop()


def test_sessions_peek_and_pending_checks():
    from controller.north.hmi import auth
    ss = auth.Sessions(idle_s=60.0)
    s = ss.open("ann", "operator", now=0.0)
    assert ss.peek(s.id, 50.0) is s and ss.peek(s.id, 59.0) is s   # no use: still from 0 s
    assert ss.peek(s.id, 61.0) is None and ss.get(s.id, 61.0) is None
    # checks in flight count; a right one finishing after a lock was set is refused
    for i in range(auth.MAX_FAILS):
        assert ss.begin("bob", "10.0.0.9", 0.0)
    assert not ss.begin("bob", "10.0.0.9", 0.0) and ss.begin("carl", "10.0.0.9", 0.0)
    assert ss.end("carl", "10.0.0.9", True, 1.0)
    for i in range(auth.MAX_FAILS - 1):
        assert not ss.end("bob", "10.0.0.9", False, 1.0)
    assert ss.locked("bob", "10.0.0.9", 1.0) == 0
    ss.failed("bob", "10.0.0.1", 1.0)              # one more elsewhere: the lock
    assert not ss.end("bob", "10.0.0.9", True, 2.0)
    assert ss.locked("bob", "10.0.0.9", 2.0) > 0 and not ss._pending
    # sequential: MAX_FAILS - 1 wrong, then the right one gets in and clears them
    for i in range(auth.MAX_FAILS - 1):
        assert ss.begin("dan", "10.0.0.2", 0.0) and not ss.end("dan", "10.0.0.2", False, 0.0)
    assert ss.begin("dan", "10.0.0.2", 0.0) and ss.end("dan", "10.0.0.2", True, 0.0)
    assert ("user", "dan") not in ss._fails


def test_non_loopback_bind_needs_tls(tmp_path):
    from controller.north.hmi.config import check_bind, hmi_table
    with pytest.raises(UserError, match="without TLS"):
        check_bind(hmi_table(listen="0.0.0.0:8443", users=tmp_path / "u.toml"))
    with pytest.raises(UserError, match="users file"):
        check_bind(hmi_table(listen="127.0.0.1:8080"))
    from tests.test_hmi_support import PLANT
    (tmp_path / "plant.toml").write_text(PLANT.replace("127.0.0.1:0", "192.0.2.1:8443"))
    from controller.config import load_config
    with pytest.raises(UserError, match="hmi.listen.*without TLS"):
        load_config(tmp_path / "plant.toml")


def test_tls_sets_secure_cookie(tmp_path):
    from controller.north.certs import make_cert
    make_cert(tmp_path / "c.der", tmp_path / "k.pem", "urn:greenedge:hmi",
              hosts=["127.0.0.1", "localhost"])
    (tmp_path / "c.pem").write_text(ssl.DER_cert_to_PEM_cert((tmp_path / "c.der").read_bytes()))
    r = Rig(tmp_path, extra='certificate = "c.pem"\nprivate_key = "k.pem"\n')
    try:
        r.start()
        assert r.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(tmp_path / "c.pem"))
        req = urllib.request.Request(r.url + "/api/login", method="POST",
                                     data=json.dumps({"user": "vic",
                                                      "password": "viewer-pass"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            cookie = resp.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    finally:
        r.stop()


def test_sessions_idle_out_and_prune():
    from controller.north.hmi import auth
    ss = auth.Sessions(idle_s=60.0)
    s = ss.open("ann", "operator", now=0.0)
    assert ss.get(s.id, 59.0) is s            # used at 59 s: idle counts from there
    assert ss.get(s.id, 118.0) is s
    assert ss.get(s.id, 179.0) is None        # 61 s idle: gone
    for i in range(auth.MAX_FAILS):
        ss.failed("bob", "10.0.0.9", now=float(i))
    assert ss.locked("bob", "10.0.0.1", 10.0) > 0 and ss.locked("carl", "10.0.0.9", 10.0) == 0
    ss.open("dan", "viewer", now=0.0)
    ss.prune(auth.LOCK_S + 100.0)
    assert ss.locked("bob", "10.0.0.1", auth.LOCK_S + 100.0) == 0
    assert not ss._by_id and not ss._fails and not ss._locked


def test_sessions_carried_over_only_for_the_same_user_and_role():
    from controller.north.hmi import auth
    a = auth.Sessions(idle_s=600.0)
    s1, s2 = a.open("ann", "operator", 0.0), a.open("bob", "operator", 0.0)
    b = auth.Sessions(idle_s=600.0)
    assert b.load(a.dump(), {"ann": "operator", "bob": "viewer"}.get, now=10.0) == 1
    assert b.get(s1.id, 11.0).user == "ann" and b.get(s2.id, 11.0) is None   # bob: now a viewer
    assert b.get(s1.id, 11.0).csrf_ok(s1.csrf)
    assert auth.Sessions(idle_s=5.0).load(a.dump(), {"ann": "operator"}.get, now=10.0) == 0


def test_point_quality_in_the_page():
    """What the quality column says (views.point_state): a slow point without a
    quality slot, read on schedule, is good though the image calls it old."""
    from controller.north.hmi.views import point_state
    from firmware import regmap
    assert point_state(True, 1.0, regmap.Q_GOOD, 100.0, 101.0, (3.0, True), 3.0)[1] == "good"
    assert point_state(True, 1.0, regmap.Q_BAD, 100.0, 101.0, (3.0, True), 3.0)[1] == "bad"
    assert point_state(True, 1.0, regmap.Q_NOT_WIRED, 100.0, 101.0, (3.0, True),
                       3.0)[1] == "not wired"
    assert point_state(True, 1.0, regmap.Q_BAD, 100.0, 104.0, (8.0, False), 3.0)[1] == "good"
    assert point_state(True, 1.0, regmap.Q_BAD, 100.0, 104.0, (8.0, True), 3.0)[1] == "bad"
    assert point_state(True, 1.0, regmap.Q_BAD, 100.0, 109.0, (8.0, False), 3.0)[1] == "stale"
    assert point_state(False, 1.0, regmap.Q_GOOD, 100.0, 101.0, (3.0, True), 3.0)[1] == "down"
    assert point_state(True, float("nan"), regmap.Q_GOOD, 100.0, 100.0, 3.0)[0] is None


def test_cli_refuses_an_unsafe_or_userless_hmi(tmp_path):
    import subprocess
    import sys
    from tests.test_hmi_support import PLANT
    (tmp_path / "users.toml").write_text("")
    (tmp_path / "a.toml").write_text(PLANT)
    r = subprocess.run([sys.executable, "-m", "controller.cli", "run", "-c",
                        str(tmp_path / "a.toml"), "--hmi", "0.0.0.0:18443", "--duration", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "refusing to bind 0.0.0.0 without TLS" in r.stderr, r.stderr
    (tmp_path / "b.toml").write_text(PLANT.split("[hmi]")[0])
    r = subprocess.run([sys.executable, "-m", "controller.cli", "run", "-c",
                        str(tmp_path / "b.toml"), "--hmi", "127.0.0.1:18443", "--duration", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--hmi needs a users file" in r.stderr, r.stderr


def test_saving_vs_baseline_over_the_same_hours():
    from types import SimpleNamespace
    from controller.north.hmi.views import kpi_view
    cfg = SimpleNamespace(accounting={"nox_point": ("scr", "nox_out_mg_nm3"), "so2_point": None,
                                      "nox_limit_mg_nm3": 50.0, "o2_ref_pct": 6.0})
    k = {"energy_kwh": 1150.0, "co2_kg": 1.0, "nox_open_mean_mg_nm3": 41.0,
         "nox_exceed_hours": 0}
    # the counter stood at 1000 kWh (carried over a restart) 2 plant hours ago
    v = kpi_view(cfg, k, {"baseline_kw": 100.0}, (1000.0, 0.0), 7200.0)
    assert v["used_kwh"] == 150.0 and v["baseline_kwh"] == 200.0 and v["saving_pct"] == 25.0
    assert v["emissions"] == [{"pollutant": "NOX", "unit": "mg/Nm3 at 6 % O2",
                               "open_hour_mean": 41.0, "limit": 50.0, "exceed_hours": 0.0}]
    assert kpi_view(cfg, k, {}, (1000.0, 0.0), 7200.0)["saving_pct"] is None
