"""The alarm engine: conditions from the hub, the ISA-18.2 / IEC 62682 state
machine, and operator actions through the command gate.

Size (643 lines): the ISA-18.2 state machine of every alarm kind, shelving, suppression
and flood handling.

States (ISA-18.2 names in brackets):

    normal                   [NORM]   condition clear, nothing to acknowledge
    unacknowledged           [UNACK]  condition active, not yet acknowledged
    acknowledged             [ACKED]  condition active, acknowledged
    returned_unacknowledged  [RTNUN]  condition cleared before anyone acknowledged
    shelved                  [SHLVD]  an operator set it aside (reason, expiry)
    suppressed               [DSUPR]  suppressed by design (suppress_when, or its
                                      device is down: the device's one alarm covers it)

    normal --active--> unacknowledged --ack--> acknowledged --clear--> normal
    unacknowledged --clear--> returned_unacknowledged --ack--> normal
    returned_unacknowledged --active--> unacknowledged
    any --shelve--> shelved --unshelve / expiry--> unacknowledged (active) | normal
    any --suppressed--> suppressed --released--> unacknowledged (active) | normal

A condition must hold on_delay_s (plant time) to become active and be gone
off_delay_s to clear; a limit clears only once the value is back past its
deadband. An unknown value (bad, stale, down) changes nothing: the quality
and device alarms report it. Every state change is one record on the hub's
"alarm" stream (the historian stores it: AlarmRecorder) with the time, the
value and who acknowledged or shelved it.

Flood-safe: a device that goes down raises its one "down" alarm; its point
alarms, its other device alarms and the "held" alarms of its loops are
suppressed while it is down. More than rate_limit annunciations (entries into
unacknowledged) in rate_window_min raise service.alarm_rate.

The engine is a housekeeping sink: pump() runs in housekeeping's pass right
after a cycle (never inside one) and costs microseconds per alarm (the
benchmark in tests/test_alarms.py measures it). Operator actions arrive as
gate commands ("ack", "shelve", "unshelve"; role operator or above, audited;
"alarm_limit", an engineer's change of a limit, deadband or delay until the
next start) and take effect in the next pump; `greenedge alarms --ack/--shelve` writes
them to state_dir/alarm_requests.json, which pump() reads (who "cli:<user>").
"""

import json
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from dataclasses import replace

from controller.accounting import at_6pct_o2
from controller.alarms.config import eval_expr
from controller.runtime.gate import Refused
from firmware import regmap

NORMAL = "normal"
UNACK = "unacknowledged"
ACKED = "acknowledged"
RTNUN = "returned_unacknowledged"
SHELVED = "shelved"
SUPPRESSED = "suppressed"
STATES = (NORMAL, UNACK, ACKED, RTNUN, SHELVED, SUPPRESSED)
KINDS = ("ack", "shelve", "unshelve")       # what greenedge alarms may request
LIMIT_KEYS = ("hi", "lo", "deadband", "on_delay_s", "off_delay_s")  # "alarm_limit" (engineer)
REQUESTS = "alarm_requests.json"
log = logging.getLogger("greenedge.alarms")
SAFE_GRACE_S = 30.0   # wall s a device may stay unarmed after coming up before safe_state counts


class Alarm:
    """One alarm's runtime state."""

    def __init__(self, d):
        self.d = d
        self.state = NORMAL
        self.active = False        # the condition after its delays
        self.acked = True          # nothing waits for an acknowledgement
        self.suppressed = False
        self.t_pending = None      # since when the raw condition differs from active
        self.value = None
        self.t_state = None
        self.t_active = None
        self.shelved_until = None
        self.shelve_reason = None
        self.by = None             # (who, reason) of the command that made the next transition
        self.who = None            # who made the last transition (None: the process)
        self.reason = None

    def effective(self):
        if self.shelved_until is not None:
            return SHELVED
        if self.suppressed:
            return SUPPRESSED
        if self.active:
            return ACKED if self.acked else UNACK
        return NORMAL if self.acked else RTNUN

    def row(self):
        d = self.d
        return {"id": d.id, "kind": d.kind, "condition": d.condition, "priority": d.priority,
                "state": self.state, "value": self.value, "t_s": self.t_state,
                "t_active": self.t_active, "who": self.who, "reason": self.reason,
                "shelved_until": self.shelved_until, "text": d.text}


class AlarmEngine:
    def __init__(self, cfg, hub, gate, clock, on_event=None, wall=None):
        """cfg: the plant config (cfg.alarms: controller/alarms/config.py);
        wall: wall-clock seconds (staleness and first contact, like the
        process image's stale_s); default time.time."""
        self.cfg, self.hub, self.gate, self.clock = cfg, hub, gate, clock
        self.on_event = on_event or (lambda kind, source, text="": None)
        self.wall = wall or time.time
        ac = cfg.alarms
        self.settings = ac.settings
        # copies: an engineer's limit change (alarm_limit) lives in the engine, not the config
        self.alarms = {aid: Alarm(replace(d)) for aid, d in ac.defs.items()}
        # the rate alarms go last: they count this pass's annunciations
        self._rate = [a for a in self.alarms.values() if a.d.condition == "alarm_rate"]
        self._order = [a for a in self.alarms.values() if a.d.condition != "alarm_rate"] + \
            self._rate
        self._lock = threading.Lock()
        self.sub = hub.subscribe("alarms", ("device", "loop", "kpi", "status", "event"))
        self.dev, self.loops, self.kpis, self.status = {}, {}, {}, None
        self.seen_up = set()
        self.t_up = {}             # device -> wall time it last came up
        self.armed_since_up = set()
        self.identity_bad = set()
        self.trips = {}            # device -> its comm_loss_trips count when last up
        self.trip_pulse = set()
        self.moved = {}            # (device, point) -> (value, plant time it last changed)
        self.overruns = None
        self.overrun_t = -math.inf
        self.dropped = None
        self.exceed = {}           # pollutant -> (hours, exceed hours) seen
        self.exceeded = {}         # pollutant -> the last closed hour was over the limit
        self.annunciated = deque()  # plant times of entries into unacknowledged
        self.transitions = 0
        self.errors = 0             # evaluation faults (logged, reported once a minute)
        self._t_error = -math.inf
        self.t_start_wall = self.wall()
        self.requests = cfg.state_dir / REQUESTS
        self._req_mtime = None
        self._req_seq = None
        if gate is not None:
            gate.alarms = self

    # ---- what other parts read --------------------------------------------------------------
    def rows(self):
        with self._lock:
            return [a.row() for a in self.alarms.values()]

    def summary(self):
        counts = {}
        for a in self.alarms.values():
            counts[a.state] = counts.get(a.state, 0) + 1
        return {"defined": len(self.alarms), "states": counts, "transitions": self.transitions,
                "errors": self.errors,
                "active": sum(1 for a in self.alarms.values() if a.state in (UNACK, ACKED))}

    def restore(self, rows):
        """The states a previous run left in the historian's alarm_state table:
        an alarm still waiting for its acknowledgement (unacknowledged,
        returned unacknowledged), one acknowledged, or shelved (until its
        expiry) carries on; the first evaluations then follow the process."""
        t = self.clock.plant_s()
        n = 0
        for r in rows:
            a = self.alarms.get(r.get("id"))
            st = r.get("state")
            if a is None or st not in STATES:
                continue
            if st == SHELVED:
                until = r.get("shelved_until")
                if until is None or until <= t:
                    continue
                a.shelved_until, a.shelve_reason = until, r.get("reason")
            elif st in (UNACK, ACKED, RTNUN):
                a.active = st != RTNUN
                a.acked = st == ACKED
                a.t_active = r.get("t_active")
            else:
                continue
            a.state, a.t_state, a.value = st, r.get("t"), r.get("value")
            a.who, a.reason = r.get("who"), r.get("reason")
            n += 1
        return n

    # ---- commands (the gate calls check(); apply() runs in pump) ----------------------------
    def check(self, rec, kind, alarm=None, minutes=None, reason=None, values=None):
        a = self.alarms.get(alarm) if isinstance(alarm, str) else None
        if a is None:
            raise Refused("no alarm %r" % (alarm,))
        rec["target"] = alarm
        who = rec["who"]
        if reason is not None and (not isinstance(reason, str) or len(reason) > 200):
            raise Refused("reason: expected a text of at most 200 characters")
        if kind == "alarm_limit":
            return self._check_limit(rec, a, values, who, reason)
        if kind == "ack":
            if a.state not in (UNACK, RTNUN):
                raise Refused("alarm %s is %s: nothing to acknowledge" % (alarm, a.state))
            rec["new"] = {"state": "acknowledged"}

            def apply():
                rec["old"] = {"state": a.state}
                a.acked = True
                a.by = (who, reason)
            return apply
        if kind == "shelve":
            if not reason or not reason.strip():
                raise Refused("shelving needs a reason")
            mx = self.settings.max_shelve_min
            if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) \
                    or not math.isfinite(minutes) or not 0 < minutes <= mx:
                raise Refused("shelve for %r min: expected 0 < minutes <= %g" % (minutes, mx))
            rec["new"] = {"state": SHELVED, "minutes": float(minutes), "reason": reason}

            def apply():
                rec["old"] = {"state": a.state, "shelved_until": a.shelved_until}
                t = self.clock.plant_s()
                a.shelved_until = t + 60.0 * minutes
                a.shelve_reason = reason
                rec["new"]["until"] = a.shelved_until
                a.by = (who, reason)
            return apply
        if a.shelved_until is None:
            raise Refused("alarm %s is %s, not shelved" % (alarm, a.state))
        rec["new"] = {"state": "unshelved"}

        def apply():
            rec["old"] = {"state": a.state, "shelved_until": a.shelved_until}
            a.shelved_until = None
            a.by = (who, reason)
        return apply

    def _check_limit(self, rec, a, values, who, reason):
        """An engineer's change of a limit, deadband or delay (until the next
        start: the config wins, as for loop parameters)."""
        d = a.d
        if not isinstance(values, dict) or not values:
            raise Refused("values: expected {key: number} (keys: %s)" % ", ".join(LIMIT_KEYS))
        new = {}
        for k, v in values.items():
            if k not in LIMIT_KEYS:
                raise Refused("%s is not a limit key (keys: %s)" % (k, ", ".join(LIMIT_KEYS)))
            if k in ("hi", "lo", "deadband") and d.kind not in ("limit", "emission"):
                raise Refused("%s is a %s alarm: it has no %s" % (d.id, d.kind, k))
            if k in ("hi", "lo") and (d.kind != "limit" or d.condition != k):
                raise Refused("%s is a %s alarm: it has no %s limit" % (d.id, d.condition, k))
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise Refused("%s = %r: expected a number" % (k, v))
            if k != "hi" and k != "lo" and not 0 <= v <= 604800:
                raise Refused("%s = %r outside 0..604800" % (k, v))
            new[k] = float(v)
        rec["new"] = dict(new)

        def apply():
            rec["old"] = {k: getattr(d, k) for k in new}
            for k, v in new.items():
                setattr(d, k, v)
            self.on_event("alarm_limit", d.id, "%s by %s%s" % (
                ", ".join("%s %s -> %g" % (k, _g(rec["old"][k]), v) for k, v in new.items()),
                who, (": " + reason) if reason else ""))
        return apply

    def poll_requests(self):
        """state_dir/alarm_requests.json (greenedge alarms --ack/--shelve/--unshelve):
        each new request a gate command. Requests written before this service
        started are not replayed."""
        try:
            mtime = self.requests.stat().st_mtime_ns
        except OSError:
            if self._req_seq is None:
                self._req_seq = 0
            return
        if mtime == self._req_mtime:
            return
        self._req_mtime = mtime
        try:
            reqs = json.loads(self.requests.read_text()).get("requests", [])
            reqs = [r for r in reqs if isinstance(r, dict) and isinstance(r.get("seq"), int)]
        except (OSError, ValueError, AttributeError) as e:
            self.on_event("control_error", str(self.requests), "cannot read: %s" % e)
            return
        if self._req_seq is None:  # first look: what was there before we started is history
            old = [r["seq"] for r in reqs if not (isinstance(r.get("wall"), (int, float))
                                                  and r["wall"] >= self.t_start_wall)]
            self._req_seq = max(old, default=0)
        for r in sorted(reqs, key=lambda r: r["seq"]):
            if r["seq"] <= self._req_seq:
                continue
            self._req_seq = r["seq"]
            args = {"alarm": r.get("alarm")}
            if r.get("kind") == "shelve":
                args["minutes"] = r.get("minutes")
            if r.get("reason") is not None:
                args["reason"] = r.get("reason")
            t = self.gate.submit(str(r.get("who", "cli")), "operator", r.get("kind"), None, **args)
            if not t.accepted:
                self.on_event("control_error", str(r.get("alarm")), t.reason)

    # ---- inputs -----------------------------------------------------------------------------
    def _take(self):
        state, stream = self.sub.drain()
        now = self.wall()
        for (topic, key), v in state.items():
            if topic == "device":
                self._device(key, v, now)
            elif topic == "loop":
                self.loops[key] = v
            elif topic == "kpi":
                self.kpis = v
            else:
                self.status = v
        for topic, item in stream:
            if item.get("kind") == "identity_mismatch":
                self.identity_bad.add(item.get("source"))
        if self.status:
            for dn, ds in self.status.get("devices", {}).items():
                if ds.get("identity_ok"):
                    self.identity_bad.discard(dn)

    def _device(self, dn, v, now):
        was = self.dev.get(dn, {}).get("up", False)
        self.dev[dn] = v
        if not v.get("up"):
            self.armed_since_up.discard(dn)
            return
        if not was:
            self.t_up[dn] = now
        self.seen_up.add(dn)
        pts = v.get("points", {})
        st = pts.get("status")
        if st is not None and int(st[0]) & regmap.ST_ARMED:
            self.armed_since_up.add(dn)
        trips = pts.get("comm_loss_trips")
        if trips is not None:
            n = int(trips[0])
            if dn in self.trips and n > self.trips[dn]:
                self.trip_pulse.add(dn)
            self.trips[dn] = n
        t = self.clock.plant_s()
        for p, (val, q, _) in pts.items():
            old = self.moved.get((dn, p))
            if old is None or old[0] != val:
                self.moved[(dn, p)] = (val, t)

    def value(self, dn, point):
        """A point's value if it is good and fresh and its device up, else None."""
        d = self.dev.get(dn)
        if not d or not d.get("up"):
            return None
        v = d.get("points", {}).get(point)
        if v is None or v[1] == regmap.Q_BAD or self.wall() - v[2] > self.cfg.stale_s:
            return None
        return v[0]

    def is_down(self, dn):
        d = self.dev.get(dn)
        return d is not None and not d.get("up") and (
            dn in self.seen_up or self.wall() - self.t_start_wall > self.settings.first_contact_s)

    def in_manual(self, ln):
        lv = self.loops.get(ln)
        return bool(lv and (lv.get("manual") or lv.get("mode") == "manual"))

    # ---- conditions: (raw True / False / None = unknown, value) --------------------------------
    def condition(self, a, t):
        d = a.d
        k = d.kind
        if k == "limit":
            v = self.value(d.device, d.point)
            if v is None:
                return None, None
            if d.condition == "hi":
                return (v > d.hi - d.deadband if a.active else v > d.hi), v
            return (v < d.lo + d.deadband if a.active else v < d.lo), v
        if k == "quality":
            dv = self.dev.get(d.device)
            if not dv or not dv.get("up"):
                return None, None
            pv = dv.get("points", {}).get(d.point)
            if pv is None:
                return None, None
            val, q, t_src = pv
            if d.condition == "bad":
                return q == regmap.Q_BAD and self.wall() - t_src <= self.cfg.stale_s, val
            age = self.wall() - t_src
            if d.condition == "stale":
                return age > self.cfg.stale_s, round(age, 3)
            if q == regmap.Q_BAD or age > self.cfg.stale_s:
                return None, val
            mv = self.moved.get((d.device, d.point))
            return (mv is not None and t - mv[1] >= d.stuck_s), val
        if k == "device":
            return self._device_condition(d)
        if k == "loop":
            lv = self.loops.get(d.loop)
            if lv is None:
                return None, None
            if d.condition == "error":
                return lv.get("mode") == "error", float(lv.get("errors", 0))
            if d.condition == "manual":
                return self.in_manual(d.loop), None
            if self.in_manual(d.loop) or lv.get("mode") == "error":
                return False, None
            last = lv.get("t_s")
            if last is None:
                return None, None
            # Held: no run for over 2.5 periods (a loop that runs now and then
            # is not held); on_delay_s says for how long before it raises.
            lc = self.cfg.loops.get(d.loop)
            period = lc.params.get("period_s", self.cfg.groups.get(lc.group, 1.0)) if lc else 1.0
            return t - last > 2.5 * period, round(t - last, 3)
        if k == "emission":
            return self._emission(a, t)
        return self._service(d, t)

    def _device_condition(self, d):
        dn = d.device
        dv = self.dev.get(dn)
        if d.condition == "down":
            if dv is None:
                return None, None
            return self.is_down(dn), 0.0 if dv.get("up") else 1.0
        if d.condition == "identity":
            return dn in self.identity_bad, None
        if not dv or not dv.get("up"):
            return None, None
        st = dv.get("points", {}).get("status")
        if d.condition == "comm_loss_trip":
            pulse = dn in self.trip_pulse
            self.trip_pulse.discard(dn)
            lost = st is not None and int(st[0]) & regmap.ST_COMM_LOST
            return bool(pulse or lost), float(self.trips.get(dn, 0))
        if st is None:
            return None, None
        word = int(st[0])
        if d.condition == "interlock":
            il = dv["points"].get("interlocks")
            return bool(word & regmap.ST_INTERLOCK), (il[0] if il else None)
        # safe_state: only once the device should be driven: it was armed since
        # it came up, or it has been up SAFE_GRACE_S (wall) without being armed.
        safe = bool(word & regmap.ST_SAFE_STATE) or not word & regmap.ST_ARMED
        due = dn in self.armed_since_up or self.wall() - self.t_up.get(dn, math.inf) > SAFE_GRACE_S
        return (safe and due), float(word)

    def _emission(self, a, t):
        d = a.d
        key = d.pollutant
        acc = self.cfg.accounting
        lim = acc[key + "_limit_mg_nm3"]
        if d.condition == "exceedance":
            hours, over = self.kpis.get(key + "_hours"), self.kpis.get(key + "_exceed_hours")
            if hours is None:
                return None, None
            seen = self.exceed.get(key)
            if seen is not None and hours > seen[0]:
                self.exceeded[key] = over > seen[1]
            self.exceed[key] = (hours, over)
            return self.exceeded.get(key, False), float(over)
        mean = self.kpis.get(key + "_open_mean_mg_nm3", self.kpis.get(key + "_hour_mean_mg_nm3"))
        valid = self.kpis.get(key + "_open_valid_s") or 0.0
        ref, o2 = acc[key + "_point"], acc[key + "_o2_point"]
        c, x = self.value(*ref), self.value(*o2) if o2 else None
        now = at_6pct_o2(c, x, acc.get("o2_ref_pct", 6.0)) if c is not None and x is not None \
            and x < 21.0 else None
        left = 3600.0 - (t % 3600.0)
        if mean is None and now is None:
            return None, None
        if mean is None:
            proj = now
        elif now is None:
            proj = mean
        else:  # the hour so far, and the rest of it at today's value
            proj = (mean * valid + now * left) / max(valid + left, 1e-9)
        lo = lim - d.deadband if a.active else lim
        return proj > lo, round(proj, 3)

    def _service(self, d, t):
        s = self.status
        if d.condition == "alarm_rate":
            self._trim_rate(t)
            n = len(self.annunciated)
            return n > self.settings.rate_limit, float(n)
        if s is None:
            return None, None
        h = s.get("historian")
        if d.condition == "cycle_overrun":
            n = sum(g.get("overruns", 0) for g in s.get("groups", {}).values())
            if self.overruns is not None and n > self.overruns:
                self.overrun_t = t
            self.overruns = n
            # True in the pass that sees a new overrun; off_delay_s holds it.
            return self.overrun_t == t, float(n)
        if h is None:
            return None, None
        if d.condition == "historian_failing":
            return h.get("error") is not None, float(h.get("queued_rows", 0))
        dropped = h.get("dropped_rows", 0)
        grew = self.dropped is not None and dropped > self.dropped
        self.dropped = dropped
        full = h.get("db_mb", 0.0) >= 0.95 * self.cfg.historian["max_mb"]
        return bool(full or grew), float(h.get("db_mb", 0.0))

    def _trim_rate(self, t):
        """Keep the annunciations of the rate window only (bounded with or without a rate alarm)."""
        w = 60.0 * self.settings.rate_window_min
        while self.annunciated and self.annunciated[0] < t - w:
            self.annunciated.popleft()

    def is_suppressed(self, a):
        d = a.d
        if d.kind in ("limit", "quality") or (d.kind == "device" and d.condition not in
                                              ("down", "identity")):
            # down, or answering as another device (its values are not this device's)
            if self.is_down(d.device) or d.device in self.identity_bad:
                return True
        if d.kind == "loop" and d.condition == "held":
            lc = self.cfg.loops.get(d.loop)
            if lc and any(self.is_down(dn) or dn in self.identity_bad
                          for dn in lc.devices.values()):
                return True
        if d.suppress is not None:
            return eval_expr(d.suppress, self.value, self.is_down, self.in_manual)
        return False

    # ---- one pass -----------------------------------------------------------------------------
    def pump(self):
        """Read the hub, apply the gate's alarm commands, evaluate every alarm.
        A fault here (a bug, data nobody expected) is logged and reported as an
        alarm_error event, never raised: housekeeping (state, status, the
        watchdog) goes on, and so do the other alarms."""
        try:
            if self.gate is not None:
                self.poll_requests()
            self._take()
            t = self.clock.plant_s()
            with self._lock:
                if self.gate is not None:
                    self.gate.apply_alarms()
                for a in self._order:
                    try:
                        self._step(a, t)
                    except Exception as e:
                        self._fault(a.d.id, e)
        except Exception as e:
            self._fault("alarms", e)

    def _fault(self, source, e):
        self.errors += 1
        now = self.wall()
        if now - self._t_error >= 60.0:
            self._t_error = now
            log.exception("alarm evaluation failed (%s)", source)
            self.on_event("alarm_error", source, "%s: %s (%d faults so far)"
                          % (type(e).__name__, e, self.errors))

    def _step(self, a, t):
        d = a.d
        raw, value = self.condition(a, t)
        if value is not None or raw is not None:
            a.value = value
        if raw is not None:
            if raw != a.active:
                if a.t_pending is None:
                    a.t_pending = t
                if t - a.t_pending >= (d.on_delay_s if raw else d.off_delay_s):
                    a.active = raw
                    a.t_pending = None
                    if raw:
                        a.t_active = t
                        if a.shelved_until is None and not a.suppressed:
                            a.acked = False
            else:
                a.t_pending = None
        if a.shelved_until is not None and t >= a.shelved_until:
            a.shelved_until = None
            a.shelve_reason = None
            a.by = a.by or ("expiry", "shelving expired")
        a.suppressed = self.is_suppressed(a)
        hidden = a.shelved_until is not None or a.suppressed
        if hidden:
            a.acked = True
        elif a.state in (SHELVED, SUPPRESSED):
            a.acked = not a.active        # back in view: an active alarm annunciates again
        new = a.effective()
        if new == a.state:
            a.by = None
            return
        old, a.state, a.t_state = a.state, new, t
        who, reason = a.by or (None, None)
        if new == SHELVED and reason is None:
            reason = a.shelve_reason
        if new == SUPPRESSED and who is None:
            if d.suppress is not None and eval_expr(d.suppress, self.value, self.is_down,
                                                    self.in_manual):
                reason = "by design: %s" % d.suppress_when
            elif d.device in self.identity_bad:
                reason = "device identity mismatch"
            else:
                reason = "device down"
        a.who, a.reason, a.by = who, reason, None
        if new == UNACK and d.condition != "alarm_rate":
            self.annunciated.append(t)
            self._trim_rate(t)
        self.transitions += 1
        rec = {"t_s": t, "wall": time.time(), "id": d.id, "kind": d.kind,
               "condition": d.condition, "priority": d.priority, "old": old, "new": new,
               "value": a.value if isinstance(a.value, (int, float)) else None,
               "who": who, "reason": reason, "shelved_until": a.shelved_until, "text": d.text}
        if self.hub is not None:
            self.hub.emit("alarm", rec)


def _g(v):
    return "-" if v is None else "%g" % v


class AlarmRecorder:
    """Hub "alarm" stream -> the historian's alarms table (every transition)
    and alarm_state table (the newest state per alarm; replaced in full at
    start so it lists this run's definitions). At start it hands the engine
    what the last run left in alarm_state (restore): a restart neither loses
    an unacknowledged alarm nor ends a shelving."""

    def __init__(self, hub, hist, engine):
        self.sub = hub.subscribe("alarm_historian", ("alarm",))
        self.hist, self.engine = hist, engine
        self.synced = False
        from controller.historian import alarm_states
        try:
            self.restored = engine.restore(alarm_states(hist.path))
        except (OSError, ValueError, sqlite3.Error):   # no usable table: start afresh
            self.restored = 0

    def pump(self):
        if not self.synced:
            self.synced = True
            self.hist.alarm_sync(self.engine.rows(), self.engine.clock.plant_s())
        _, stream = self.sub.drain()
        for _, rec in stream:
            self.hist.alarm(rec)
