"""The command gate: the one way anything outside the loops changes the plant.

Every change from an operator, an engineer or an interface (`greenedge mode`,
the HMI, OPC UA, Sparkplug commands) is a call to CommandGate.submit():

1. role: viewer < operator < engineer; modes, manual outputs and set points
   need operator, loop parameters need engineer;
2. validation: manual outputs against the register map (writable, in range),
   set points against the loop's range (0 .. its design figure), parameters
   by the strategy's own checks (the rules `greenedge check` applies);
3. an accepted command waits for the next cycle boundary of its loop's group
   (apply(), called by the cycle before it freezes the image), so a loop never
   sees half a change;
4. every command, accepted or refused, leaves an audit record (who, role,
   what, old, new, when, accepted or why refused) on the hub's "audit" stream,
   which the historian stores.

Alarm commands ("ack", "shelve", "unshelve": operator; "alarm_limit":
engineer) are checked by the alarm engine (controller/alarms, which registers
itself as gate.alarms) and applied in its next pass (apply_alarms), audited
the same way.

submit() returns a Ticket: refused at once with its reason, or accepted and
then applied (ticket.done is set) at the boundary.
"""

import math
import threading
import time

from controller.loops import SETPOINTS, strategy_class
from controller.registers import point_map
from controller.runtime import state as st

ROLES = ("viewer", "operator", "engineer")
NEEDS = {"mode": "operator", "setpoint": "operator", "param": "engineer",
         "ack": "operator", "shelve": "operator", "unshelve": "operator",
         "alarm_limit": "engineer"}
# checked and applied by the alarm engine
ALARM_KINDS = ("ack", "shelve", "unshelve", "alarm_limit")


class Refused(ValueError):
    """A command the gate will not apply; the message says why."""


class Ticket:
    def __init__(self, record):
        self.record = record
        self.done = threading.Event()

    @property
    def accepted(self):
        return self.record["accepted"]

    @property
    def reason(self):
        return self.record["reason"]


def check_outputs(cfg, loop, outputs):
    """{role: {point: value}} -> the same as floats, or Refused: each point
    writable and within the register map's range."""
    lc = cfg.loops[loop]
    out = {}
    for role, vals in (outputs or {}).items():
        if role not in lc.devices:
            raise Refused("loop %s has no device role %r (roles: %s)"
                          % (loop, role, ", ".join(lc.devices)))
        if not isinstance(vals, dict):
            raise Refused("%s: expected {point: value}" % role)
        pts = point_map(cfg.devices[lc.devices[role]].profile)
        for k, v in vals.items():
            p = pts.get(k)
            if p is None or p.access != "rw":
                raise Refused("%s.%s is not a writable point" % (role, k))
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not p.min <= v <= p.max:
                raise Refused("%s.%s = %r outside %g..%g %s" % (role, k, v, p.min, p.max, p.unit))
            out.setdefault(role, {})[k] = float(v)
    return out


class CommandGate:
    def __init__(self, cfg, loops, hub, clock):
        self.cfg, self.loops, self.hub, self.clock = cfg, loops, hub, clock
        self._pending = []           # (ticket, apply function)
        self._lock = threading.Lock()
        self.alarms = None           # the alarm engine (controller/alarms) registers itself
        self.accepted = 0
        self.refused = 0

    # ---- entry ------------------------------------------------------------------
    def submit(self, who, role, kind, loop, **args):
        """kind "mode" (mode="auto"|"manual", outputs={role: {point: v}}),
        "setpoint" (key, value) or "param" (name, value); alarm kinds with loop
        None: "ack" (alarm, reason), "shelve" (alarm, minutes, reason),
        "unshelve" (alarm), "alarm_limit" (alarm, values={"hi": 48.0, ...}).
        Returns a Ticket."""
        rec = {"t_s": self.clock.plant_s(), "wall": time.time(), "who": str(who), "role": role,
               "kind": kind, "loop": loop, "target": None, "old": None, "new": None,
               "accepted": False, "reason": None}
        try:
            if role not in ROLES:
                raise Refused("unknown role %r" % (role,))
            if kind not in NEEDS:
                raise Refused("unknown command %r (commands: %s)" % (kind, ", ".join(NEEDS)))
            if ROLES.index(role) < ROLES.index(NEEDS[kind]):
                raise Refused("role %s may not change %s (needs %s)" % (role, kind, NEEDS[kind]))
            if kind in ALARM_KINDS:
                if self.alarms is None:
                    raise Refused("this service has no alarm engine")
                fn = self.alarms.check(rec, kind, **args)
            elif loop not in self.loops:
                raise Refused("no loop %r (loops: %s)" % (loop, ", ".join(self.loops) or "none"))
            else:
                fn = getattr(self, "_check_" + kind)(rec, self.loops[loop], **args)
        except (Refused, TypeError) as e:
            rec["reason"] = str(e)
            self.refused += 1
            t = Ticket(rec)
            self._audit(rec)
            t.done.set()
            return t
        rec["accepted"] = True
        t = Ticket(rec)
        with self._lock:
            self._pending.append((t, fn))
        return t

    # ---- checks: each returns what apply() will do -------------------------------
    def _check_mode(self, rec, runner, mode=None, outputs=None):
        if mode not in ("auto", "manual"):
            raise Refused("mode %r is not auto or manual" % (mode,))
        if outputs and mode != "manual":
            raise Refused("manual outputs only go with mode manual")
        outs = check_outputs(self.cfg, runner.cfg.name, outputs)
        rec["target"] = "mode"
        rec["new"] = {"mode": mode, "outputs": outs} if outs else {"mode": mode}

        def apply():
            rec["old"] = {"mode": "manual" if runner.manual is not None else runner.mode}
            runner.manual = outs if mode == "manual" else None
        return apply

    def _check_setpoint(self, rec, runner, key=None, value=None):
        ranges = SETPOINTS.get(runner.cfg.plant, {})
        if key not in ranges or isinstance(runner.process.get(key), tuple):
            fixed = [k for k in ranges if not isinstance(runner.process.get(k), tuple)]
            raise Refused("%s has no set point %r an operator may change (set points: %s)"
                          % (runner.cfg.name, key, ", ".join(fixed) or "none"))
        lo, hi_key = ranges[key]
        hi = runner.process[hi_key]
        if not st.finite(value) or isinstance(value, bool) or not lo <= value <= hi:
            raise Refused("%s = %r outside %g..%g (%s)" % (key, value, lo, hi, hi_key))
        rec["target"], rec["new"] = key, float(value)

        def apply():
            rec["old"] = runner.process[key]
            runner.process[key] = float(value)
        return apply

    def _check_param(self, rec, runner, name=None, value=None):
        lc = runner.cfg
        cls = strategy_class(lc.plant, lc.strategy)
        if name not in cls.PARAMS:
            raise Refused("%s is not a parameter of %s/%s (known: %s)"
                          % (name, lc.plant, lc.strategy, ", ".join(cls.PARAMS) or "none"))
        if not st.finite(value) or isinstance(value, bool) or not 0.0 <= value <= 1e6:
            raise Refused("%s = %r outside 0..1e6" % (name, value))
        params = dict(runner.strategy.params, **{name: float(value)})
        try:
            cls(params)  # the strategy's own rules, as `greenedge check` applies them
        except ValueError as e:
            raise Refused(str(e))
        rec["target"], rec["new"] = "params." + name, float(value)

        def apply():
            rec["old"] = runner.strategy.params.get(name)
            runner.strategy = retune(runner.strategy, cls, params)
        return apply

    # ---- at the cycle boundary ---------------------------------------------------------
    def apply(self, loop_names):
        """Apply the pending commands for these loops (the cycle calls this first)."""
        return self._apply(lambda rec: rec["loop"] in loop_names
                           and rec["kind"] not in ALARM_KINDS)

    def apply_alarms(self):
        """Apply the pending alarm commands (the alarm engine calls this in its pass)."""
        return self._apply(lambda rec: rec["kind"] in ALARM_KINDS)

    def _apply(self, mine_if):
        if not self._pending:
            return 0
        with self._lock:
            mine = [p for p in self._pending if mine_if(p[0].record)]
            self._pending = [p for p in self._pending if not mine_if(p[0].record)]
        for t, fn in mine:
            fn()
            t.record["t_s"] = self.clock.plant_s()
            self.accepted += 1
            self._audit(t.record)
            t.done.set()
        return len(mine)

    def _audit(self, rec):
        if self.hub is not None:
            self.hub.emit("audit", dict(rec))


def retune(old, cls, params):
    """A strategy with new parameters that carries on from the old one's state
    (integrators, outputs, models: no bump). Attributes that the parameters
    determine take the new values: they are the ones that differ between a
    fresh strategy with the old parameters and one with the new."""
    new = cls(params)
    fresh_old, fresh_new = st.capture(cls(old.params)), st.capture(new)
    saved = st.capture(old)
    keep = {k: v for k, v in saved.items()
            if not _differs(fresh_old.get(k), fresh_new.get(k))}
    st.restore(new, keep)
    return new


def _differs(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return False
    return a != b
