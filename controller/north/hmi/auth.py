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
each failure is logged with the address. A password check still running
counts toward the limit (begin() before the slow hash, end() after it), so
parallel guesses get no more checks than the limit, and a right password is
refused if a lock was set while it was checked.

Only a user's requests keep a session alive (get()); the live stream checks
its session with peek(), which does not count as use.
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
        self._pending = {}      # ("user"|"addr", name) -> password checks running

    def _live(self, sid, now):
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
        return s

    def get(self, sid, now):
        """The session of sid, or None; a user's request: it counts as use."""
        s = self._live(sid, now)
        if s is not None:
            s.t_used = now
        return s

    def peek(self, sid, now):
        """The session of sid, or None, without counting as use (the live stream
        checks with it: an open stream does not keep a session alive, only the
        user's own requests do)."""
        return self._live(sid, now)

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

    @staticmethod
    def _limit(k):
        return MAX_FAILS if k[0] == "user" else MAX_FAILS_ADDR

    def begin(self, user, addr, now):
        """Admit one password check for user from addr before it runs (True), or
        refuse it (False) while either is locked or its recent failures plus the
        checks still running reach the limit: a check in flight counts, so a
        burst of parallel guesses gets no more checks than the limit. Every
        admitted check is ended by end()."""
        if self.locked(user, addr, now) > 0:
            return False
        keys = (("user", user), ("addr", addr))
        for k in keys:
            recent = [t for t in self._fails.get(k, []) if now - t < WINDOW_S]
            if len(recent) + self._pending.get(k, 0) >= self._limit(k):
                return False
        for k in keys:
            self._pending[k] = self._pending.get(k, 0) + 1
        return True

    def end(self, user, addr, ok, now):
        """An admitted check's result: a wrong password counts as a failure (and
        may lock); a right one clears the failures and is let in (True) unless
        a lock was set on the user or address while it ran (False)."""
        for k in (("user", user), ("addr", addr)):
            n = self._pending.get(k, 0) - 1
            if n > 0:
                self._pending[k] = n
            else:
                self._pending.pop(k, None)
        if not ok:
            self.failed(user, addr, now)
            return False
        if self.locked(user, addr, now) > 0:
            return False
        self.succeeded(user, addr)
        return True

    def failed(self, user, addr, now):
        for k in (("user", user), ("addr", addr)):
            times = [t for t in self._fails.get(k, []) if now - t < WINDOW_S] + [now]
            self._fails[k] = times
            if len(times) >= self._limit(k):
                self._locked[k] = now + LOCK_S
                self._fails[k] = []

    def succeeded(self, user, addr):
        self._fails.pop(("user", user), None)
        self._fails.pop(("addr", addr), None)
