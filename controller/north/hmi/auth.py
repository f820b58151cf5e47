"""HMI sessions, CSRF tokens and login lock-out (no I/O; time is an argument:
wall seconds, so sessions carry over a service restart).

A session is a random 256-bit id in a cookie (HttpOnly, SameSite=Strict,
Secure under TLS) mapped to (user, role, csrf token, last use). Every
state-changing request must carry the session's CSRF token in the
X-CSRF-Token header (the page reads it from /api/session; a cross-site form
can neither read it nor set a header) and a JSON body. A session ends at
logout or after idle_s without a request. Sessions are kept by the SHA-256
of their id (dump() / load(): the server keeps them in the state folder so a
restart of the service does not log the control room out; the file never
holds a cookie's value, and load() drops a session whose user is gone from
the users file or has another role now).

Lock-out: MAX_FAILS wrong passwords for one user name (MAX_FAILS_ADDR from
one client address, which may be a whole control room behind one NAT) within
WINDOW_S lock that name (address) out for LOCK_S, whatever password follows;
each failure is logged with the address.
"""

import hashlib
import hmac
import secrets

MAX_FAILS = 5
MAX_FAILS_ADDR = 20
WINDOW_S = 900.0
LOCK_S = 900.0
COOKIE = "greenedge_session"


def _key(sid):
    return hashlib.sha256(sid.encode()).hexdigest()


class Session:
    def __init__(self, user, role, now):
        self.id = secrets.token_urlsafe(32)     # the cookie's value; only its hash is kept
        self.key = _key(self.id)
        self.csrf = secrets.token_urlsafe(32)
        self.user, self.role = user, role
        self.t_login = now
        self.t_used = now

    def csrf_ok(self, token):
        return isinstance(token, str) and hmac.compare_digest(token, self.csrf)


class Sessions:
    def __init__(self, idle_s=1800.0):
        self.idle_s = idle_s
        self._by_id = {}        # sha256(session id) -> Session
        self.changed = False    # opened or closed since the last dump
        self._fails = {}        # ("user"|"addr", name) -> [failure times]
        self._locked = {}       # ("user"|"addr", name) -> locked until

    def get(self, sid, now):
        if not isinstance(sid, str) or len(sid) > 100:
            return None
        k = _key(sid)
        s = self._by_id.get(k)
        if s is None:
            return None
        if now - s.t_used > self.idle_s:
            del self._by_id[k]
            self.changed = True
            return None
        s.t_used = now
        return s

    def open(self, user, role, now):
        s = Session(user, role, now)
        self._by_id[s.key] = s
        self.changed = True
        return s

    def close(self, sid):
        if isinstance(sid, str) and self._by_id.pop(_key(sid), None) is not None:
            self.changed = True

    def dump(self):
        return {"sessions": [{"key": k, "user": s.user, "role": s.role, "csrf": s.csrf,
                              "t_login": s.t_login, "t_used": s.t_used}
                             for k, s in self._by_id.items()]}

    def load(self, data, role_of, now):
        """Sessions from dump(); role_of(user) -> the user's role now (or None)."""
        n = 0
        for d in (data or {}).get("sessions", []):
            try:
                if role_of(d["user"]) != d["role"] or now - float(d["t_used"]) > self.idle_s:
                    continue
                s = Session(d["user"], d["role"], float(d["t_login"]))
                s.id, s.key, s.csrf, s.t_used = None, str(d["key"]), str(d["csrf"]), \
                    float(d["t_used"])
            except (KeyError, TypeError, ValueError):
                continue
            self._by_id[s.key] = s
            n += 1
        return n

    def prune(self, now):
        """Forget idle sessions, old failures and expired locks (called once a tick)."""
        for k in [k for k, s in self._by_id.items() if now - s.t_used > self.idle_s]:
            del self._by_id[k]
            self.changed = True
        for k in [k for k, ts in self._fails.items() if not ts or now - ts[-1] >= WINDOW_S]:
            del self._fails[k]
        for k in [k for k, until in self._locked.items() if until <= now]:
            del self._locked[k]

    # ---- lock-out ------------------------------------------------------------------
    def locked(self, user, addr, now):
        """Seconds left of a lock on this user or address (0: none)."""
        left = 0.0
        for k in (("user", user), ("addr", addr)):
            until = self._locked.get(k)
            if until is not None:
                if until <= now:
                    del self._locked[k]
                else:
                    left = max(left, until - now)
        return left

    def failed(self, user, addr, now):
        for k in (("user", user), ("addr", addr)):
            times = [t for t in self._fails.get(k, []) if now - t < WINDOW_S] + [now]
            self._fails[k] = times
            if len(times) >= (MAX_FAILS if k[0] == "user" else MAX_FAILS_ADDR):
                self._locked[k] = now + LOCK_S
                self._fails[k] = []

    def succeeded(self, user, addr):
        self._fails.pop(("user", user), None)
        self._fails.pop(("addr", addr), None)
