"""Alarm definitions: the profile defaults and the plant config's `[[alarms]]`
entries, validated with errors that name the entry (file:line: alarms[i]
"id".key: message).

Size (523 lines): the profile default alarms and the validation of every alarm kind's
keys.

    [alarm_settings]            (optional; every key has a default)
    defaults = true             the defaults per profile below (false: only [[alarms]])
    rate_limit = 10             annunciations per rate_window_min before the
    rate_window_min = 10        service.alarm_rate alarm (ISA-18.2: 10 per 10 min)
    manual_min = 30             a loop in manual longer than this raises <loop>.manual
    stuck_s = 900               an analyzer reading that has not moved for this long
    first_contact_s = 10        a device never seen up is "down" after this (wall s)
    max_shelve_min = 720        the longest an operator may shelve an alarm

    [[alarms]]                  one entry per alarm; an id of a default changes it
    id = "scr1.nh3_slip_hi"     unique; defaults are <device>.<what>, <loop>.<what>,
                                emission.<pollutant>_<what>, service.<what>
    kind = "limit"              limit | emission | quality | device | loop | service
    point = "scr1.nh3_slip_ppm" limit, quality: the device.point
    hi = 5.0                    limit: exactly one of hi, lo (a bit point: hi = 0.5)
    deadband = 0.5              limit: the value must come back this far to clear
    on_delay_s = 60             the condition must hold this long to raise (plant s)
    off_delay_s = 10            ... and be gone this long to clear (plant s)
    priority = 2                1 (most urgent) .. 4
    text = "NH3 slip high"
    suppress_when = "scr1.flue_gas_temp_c < 300"   suppressed by design while true
    enabled = true              false drops a default

Conditions per kind: quality "bad" (NAMUR NE43 / the quality slot says bad),
"stale" (older than the service's stale_s), "stuck" (unchanged for stuck_s);
device "down", "identity", "interlock", "safe_state", "comm_loss_trip"; loop
"error", "held" (no run for on_delay_s), "manual" (longer than on_delay_s);
emission "projected" (the open hour's projected mean over the limit),
"exceedance" (the last closed hour was over it); service "historian_failing",
"historian_full", "cycle_overrun", "alarm_rate".

suppress_when: comparisons of device.point values and numbers (< <= > >= ==
!=), down(device), manual(loop), joined by and / or / not and parentheses. A
point whose value is unknown (bad, stale, down) makes its comparison false:
an alarm is never hidden by a reading nobody trusts.
"""

import math
import re
from dataclasses import dataclass, field, replace

from controller.config.toml import ConfigError, Section, key_line
from controller.registers import point_map, quality_slots
from firmware import regmap

KINDS = ("limit", "emission", "quality", "device", "loop", "service")
CONDITIONS = {
    "limit": ("hi", "lo"),
    "emission": ("projected", "exceedance"),
    "quality": ("bad", "stale", "stuck"),
    "device": ("down", "identity", "interlock", "safe_state", "comm_loss_trip"),
    "loop": ("error", "held", "manual"),
    "service": ("historian_failing", "historian_full", "cycle_overrun", "alarm_rate"),
}
# The keys an entry of each kind may carry (besides the common ones).
KEYS = {
    "limit": ("point", "hi", "lo", "deadband"),
    "emission": ("pollutant", "condition", "deadband"),
    "quality": ("point", "condition", "stuck_s"),
    "device": ("device", "condition"),
    "loop": ("loop", "condition"),
    "service": ("condition",),
}
COMMON = ("id", "kind", "priority", "text", "on_delay_s", "off_delay_s", "suppress_when",
          "enabled")

# Per profile: the measured points that get quality alarms (bad, stale), the
# analyzers that also get "stuck" (not O2: the loops' own checks allow it to be
# exactly constant, controller/loops Plausible), and the profile's fault inputs
# (limit hi 0.5).
PROFILE_POINTS = {
    "motor": {"quality": ("process_pv",), "stuck": (), "faults": (("drive_fault", 2),)},
    "compressor": {"quality": ("discharge_pressure_bar",), "stuck": (),
                   "faults": (("comp_fault", 2),)},
    "scr": {"quality": ("nox_out_mg_nm3", "nox_in_mg_nm3", "o2_pct", "flue_gas_temp_c"),
            "stuck": ("nox_out_mg_nm3",), "faults": (("analyzer_fault", 2),)},
    "fgd": {"quality": ("so2_out_mg_nm3", "so2_in_mg_nm3", "ph", "o2_pct"),
            "stuck": ("so2_out_mg_nm3", "ph"), "faults": (("so2_analyzer_fault", 2),)},
}


@dataclass
class AlarmDef:
    id: str
    kind: str
    condition: str
    priority: int = 3
    text: str = ""
    device: str = None
    point: str = None
    loop: str = None
    pollutant: str = None
    hi: float = None
    lo: float = None
    deadband: float = 0.0
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    stuck_s: float = 900.0
    suppress_when: str = None
    suppress: object = None        # the parsed expression (see parse_expr)
    enabled: bool = True
    origin: str = "default"        # "default" | "config"


@dataclass
class AlarmSettings:
    defaults: bool = True
    rate_limit: int = 10
    rate_window_min: float = 10.0
    manual_min: float = 30.0
    stuck_s: float = 900.0
    first_contact_s: float = 10.0
    max_shelve_min: float = 720.0


@dataclass
class AlarmsCfg:
    settings: AlarmSettings
    defs: dict = field(default_factory=dict)   # id -> AlarmDef, in order


# ---- suppress_when expressions ---------------------------------------------------------------
_TOKEN = re.compile(r"\s*(<=|>=|==|!=|<|>|\(|\)|-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|[A-Za-z_][\w.]*)")
OPS = ("<", "<=", ">", ">=", "==", "!=")


def parse_expr(text, devices, loops):
    """suppress_when text -> a nested tuple; ValueError naming what is wrong.
    ("or", a, b) ("and", a, b) ("not", a) ("cmp", op, x, y) ("down", dev)
    ("manual", loop); an operand is ("num", v) or ("pt", dev, point)."""
    toks, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError("cannot read %r at %r" % (text, text[pos:]))
        toks.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if not toks:
        raise ValueError("empty expression")
    i = [0]

    def peek():
        return toks[i[0]] if i[0] < len(toks) else None

    def take(want=None):
        t = peek()
        if t is None or (want is not None and t != want):
            raise ValueError("%r: expected %s at the end" % (text, want or "more")
                             if t is None else "%r: expected %r, got %r" % (text, want, t))
        i[0] += 1
        return t

    def operand():
        t = take()
        try:
            return ("num", float(t))
        except ValueError:
            pass
        if t.count(".") != 1:
            raise ValueError("%r: %r is not a number or device.point" % (text, t))
        dev, pt = t.split(".")
        if dev not in devices:
            raise ValueError("%r: no device %r" % (text, dev))
        if pt not in point_map(devices[dev].profile):
            raise ValueError("%r: profile %s of device %s has no point %r"
                             % (text, devices[dev].profile, dev, pt))
        return ("pt", dev, pt)

    def unary():
        t = peek()
        if t == "not":
            take()
            return ("not", unary())
        if t == "(":
            take()
            e = disj()
            take(")")
            return e
        if t in ("down", "manual"):
            take()
            take("(")
            name = take()
            take(")")
            pool = devices if t == "down" else loops
            if name not in pool:
                raise ValueError("%r: no %s %r" % (text, "device" if t == "down" else "loop", name))
            return (t, name)
        a = operand()
        op = take()
        if op not in OPS:
            raise ValueError("%r: expected a comparison (%s), got %r" % (text, " ".join(OPS), op))
        return ("cmp", op, a, operand())

    def conj():
        e = unary()
        while peek() == "and":
            take()
            e = ("and", e, unary())
        return e

    def disj():
        e = conj()
        while peek() == "or":
            take()
            e = ("or", e, conj())
        return e

    e = disj()
    if peek() is not None:
        raise ValueError("%r: unexpected %r" % (text, peek()))
    return e


def eval_expr(e, value, is_down, in_manual):
    """value(dev, point) -> float or None; is_down(dev), in_manual(loop) -> bool."""
    op = e[0]
    if op == "or":
        return eval_expr(e[1], value, is_down, in_manual) or eval_expr(e[2], value, is_down,
                                                                      in_manual)
    if op == "and":
        return eval_expr(e[1], value, is_down, in_manual) and eval_expr(e[2], value, is_down,
                                                                       in_manual)
    if op == "not":
        return not eval_expr(e[1], value, is_down, in_manual)
    if op == "down":
        return is_down(e[1])
    if op == "manual":
        return in_manual(e[1])
    _, cmp, a, b = e
    x = a[1] if a[0] == "num" else value(a[1], a[2])
    y = b[1] if b[0] == "num" else value(b[1], b[2])
    if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
        return False
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y, "==": x == y, "!=": x != y}[cmp]


# ---- the defaults per profile --------------------------------------------------------------
def defaults(devices, loops, groups, accounting, s):
    """{id: AlarmDef} for a plant: every device, loop, emission point and the service."""
    out = {}

    def add(d):
        out[d.id] = d

    for dn, dc in devices.items():
        prof = PROFILE_POINTS.get(dc.profile, {})
        cold = None
        if dc.profile == "scr":
            # The firmware's own dosing interlocks (interlock_scr.py): no NH3 below
            # the minimum catalyst temperature or flue-gas flow. Warming up is by
            # design, not an alarm.
            sp = point_map("scr")
            tmin = dc.settings.get("min_catalyst_temp_c", sp["min_catalyst_temp_c"].default)
            fmin = dc.settings.get("min_flue_gas_flow_nm3h", sp["min_flue_gas_flow_nm3h"].default)
            cold = "%s.flue_gas_temp_c < %g or %s.flue_gas_flow_nm3h < %g" % (dn, tmin, dn, fmin)
        add(AlarmDef(dn + ".down", "device", "down", 2, "%s does not answer" % dn, device=dn))
        add(AlarmDef(dn + ".identity", "device", "identity", 1,
                     "%s answers as another device (unit id or map): not driven" % dn,
                     device=dn))
        add(AlarmDef(dn + ".interlock", "device", "interlock", 2,
                     "%s: an interlock blocks a command" % dn, device=dn, on_delay_s=2.0,
                     suppress_when=cold))
        add(AlarmDef(dn + ".safe_state", "device", "safe_state", 2,
                     "%s outputs at their safe values (not armed)" % dn, device=dn,
                     on_delay_s=5.0))
        add(AlarmDef(dn + ".comm_loss_trip", "device", "comm_loss_trip", 3,
                     "%s tripped to its safe state on comm loss" % dn, device=dn))
        for p, prio in prof.get("faults", ()):
            add(AlarmDef("%s.%s" % (dn, p), "limit", "hi", prio,
                         "%s: %s" % (dn, p.replace("_", " ")), device=dn, point=p, hi=0.5,
                         on_delay_s=2.0))
        for p in prof.get("quality", ()):
            add(AlarmDef("%s.%s.bad" % (dn, p), "quality", "bad", 3,
                         "%s.%s reads bad (NE43 / sensor fault)" % (dn, p), device=dn, point=p,
                         on_delay_s=5.0))
            add(AlarmDef("%s.%s.stale" % (dn, p), "quality", "stale", 3,
                         "%s.%s is not updated" % (dn, p), device=dn, point=p))
        for p in prof.get("stuck", ()):
            add(AlarmDef("%s.%s.stuck" % (dn, p), "quality", "stuck", 3,
                         "%s.%s has not moved for %g s" % (dn, p, s.stuck_s), device=dn,
                         point=p, stuck_s=s.stuck_s))
        if dc.profile == "scr":
            add(AlarmDef(dn + ".nh3_slip_hi", "limit", "hi", 2, "%s NH3 slip high" % dn,
                         device=dn, point="nh3_slip_ppm", hi=5.0, deadband=0.5, on_delay_s=60.0,
                         off_delay_s=30.0, suppress_when=cold))
            add(AlarmDef(dn + ".dosing_blocked", "limit", "hi", 3,
                         "%s NH3 dosing blocked" % dn, device=dn, point="dosing_blocked",
                         hi=0.5, on_delay_s=30.0, suppress_when=cold))
        if dc.profile == "fgd":
            add(AlarmDef(dn + ".ph_lo", "limit", "lo", 3, "%s absorber pH low" % dn, device=dn,
                         point="ph", lo=5.0, deadband=0.1, on_delay_s=120.0, off_delay_s=30.0))
            add(AlarmDef(dn + ".ph_hi", "limit", "hi", 3, "%s absorber pH high" % dn, device=dn,
                         point="ph", hi=6.0, deadband=0.1, on_delay_s=120.0, off_delay_s=30.0))
    for ln, lc in loops.items():
        period = lc.params.get("period_s", groups.get(lc.group, 1.0))
        add(AlarmDef(ln + ".error", "loop", "error", 2, "loop %s failed: outputs held" % ln,
                     loop=ln))
        add(AlarmDef(ln + ".held", "loop", "held", 3, "loop %s gets no fresh measurements" % ln,
                     loop=ln, on_delay_s=max(30.0, 10.0 * period)))
        add(AlarmDef(ln + ".manual", "loop", "manual", 4,
                     "loop %s in manual for over %g min" % (ln, s.manual_min), loop=ln,
                     on_delay_s=60.0 * s.manual_min))
    for key in ("nox", "so2"):
        if accounting.get(key + "_point"):
            lim = accounting[key + "_limit_mg_nm3"]
            add(AlarmDef("emission.%s_projected" % key, "emission", "projected", 2,
                         "%s: the open hour is heading over %g mg/Nm3" % (key.upper(), lim),
                         pollutant=key, deadband=0.02 * lim, on_delay_s=60.0, off_delay_s=60.0))
            add(AlarmDef("emission.%s_exceedance" % key, "emission", "exceedance", 1,
                         "%s: the last clock hour was over %g mg/Nm3" % (key.upper(), lim),
                         pollutant=key))
    add(AlarmDef("service.historian_failing", "service", "historian_failing", 2,
                 "the historian cannot write (disk full or failing)"))
    add(AlarmDef("service.historian_full", "service", "historian_full", 3,
                 "the historian is at its max_mb budget or dropping rows"))
    add(AlarmDef("service.cycle_overrun", "service", "cycle_overrun", 3,
                 "a control cycle overran its period", off_delay_s=60.0))
    add(AlarmDef("service.alarm_rate", "service", "alarm_rate", 3,
                 "more than %d alarms in %g min (alarm flood)" % (s.rate_limit,
                                                                  s.rate_window_min)))
    return out


# ---- loading ---------------------------------------------------------------------------------
class _Entry(Section):
    """One [[alarms]] entry: errors name the entry and find its own line."""

    def __init__(self, path, text, data, index, start_line):
        super().__init__(path, text, data, "alarms[%d]." % index)
        self.index, self.start_line = index, start_line

    def error(self, key, msg):
        name = "alarms[%d]" % self.index
        if isinstance(self.data.get("id"), str):
            name += " %r" % self.data["id"]
        line = self.start_line
        if line is not None:
            lines = self.text.splitlines()
            own = re.compile(r"^\s*%s\s*=" % re.escape(key))
            for n in range(line, len(lines)):   # the lines after the entry's [[alarms]]
                if lines[n].strip().startswith("["):
                    break
                if own.match(lines[n]):
                    line = n + 1
                    break
        return ConfigError(self.path, "%s.%s" % (name, key), line, msg)


def _entry_lines(text):
    return [i for i, s in enumerate(text.splitlines(), 1)
            if re.match(r"^\s*\[\[\s*alarms\s*\]\]", s)]


def _bool(sec, key, default):
    sec.used.add(key)
    v = sec.data.get(key, default)
    if not isinstance(v, bool):
        raise sec.error(key, "expected true or false, got %r" % (v,))
    return v


def _settings(top):
    s = AlarmSettings()
    if "alarm_settings" not in top.data:
        return s
    sec = top.table("alarm_settings")
    s.defaults = _bool(sec, "defaults", True)
    rl = sec.num("rate_limit", 10, 1, 10000)
    if rl != int(rl):
        raise sec.error("rate_limit", "expected a whole number, got %r" % rl)
    s.rate_limit = int(rl)
    s.rate_window_min = sec.num("rate_window_min", 10.0, 0.1, 1440.0)
    s.manual_min = sec.num("manual_min", 30.0, 0.1, 10080.0)
    s.stuck_s = sec.num("stuck_s", 900.0, 1.0, 604800.0)
    s.first_contact_s = sec.num("first_contact_s", 10.0, 0.0, 3600.0)
    s.max_shelve_min = sec.num("max_shelve_min", 720.0, 1.0, 10080.0)
    sec.check_unknown()
    return s


def _point(sec, key, devices):
    ref = sec.str(key)
    if ref.count(".") != 1:
        raise sec.error(key, "expected \"device.point\", got %r" % ref)
    dev, pt = ref.split(".")
    if dev not in devices:
        raise sec.error(key, "no device %r (devices: %s)" % (dev, ", ".join(devices) or "none"))
    p = point_map(devices[dev].profile).get(pt)
    if p is None:
        raise sec.error(key, "profile %s of device %s has no point %r"
                        % (devices[dev].profile, dev, pt))
    if p.count != 1:
        raise sec.error(key, "%s is an array point (not polled)" % ref)
    return dev, pt


def _apply_entry(sec, base, devices, loops, accounting):
    """An entry over its default (base) or a new definition."""
    if base is None and "kind" not in sec.data:
        raise sec.error("kind", "missing: a new alarm needs a kind (%s); an id of a default "
                        "changes that default" % ", ".join(KINDS))
    kind = sec.str("kind", base.kind if base else None, KINDS)
    if base is not None and kind != base.kind:
        raise sec.error("kind", "%s is a default %s alarm; give a new id for a %s alarm"
                        % (base.id, base.kind, kind))
    d = replace(base, origin="config") if base else AlarmDef(sec.data["id"], kind, None,
                                                             origin="config")
    allowed = set(COMMON) | set(KEYS[kind])
    for k in sec.data:
        if k not in allowed:
            raise sec.error(k, "not a key of a %s alarm (keys: %s)"
                            % (kind, ", ".join(COMMON[2:] + KEYS[kind])))
    if "priority" in sec.data:
        p = sec.num("priority", None, 1, 4)
        if p != int(p):
            raise sec.error("priority", "expected a whole number 1..4, got %r" % p)
        d.priority = int(p)
    if "text" in sec.data:
        d.text = sec.str("text")
    for k in ("on_delay_s", "off_delay_s"):
        if k in sec.data:
            setattr(d, k, sec.num(k, None, 0.0, 604800.0))
    if "enabled" in sec.data:
        d.enabled = _bool(sec, "enabled", True)
    if "suppress_when" in sec.data:
        d.suppress_when = sec.str("suppress_when") or None
    if kind in ("limit", "quality"):
        if "point" in sec.data:
            d.device, d.point = _point(sec, "point", devices)
        elif d.point is None:
            raise sec.error("point", "missing (\"device.point\")")
    if kind == "limit":
        if "hi" in sec.data or "lo" in sec.data:
            if "hi" in sec.data and "lo" in sec.data:
                raise sec.error("lo", "one limit per alarm: give hi or lo (two entries for both)")
            d.hi = d.lo = None
            which = "hi" if "hi" in sec.data else "lo"
            setattr(d, which, sec.num(which))
            d.condition = which
        elif d.condition is None:
            raise sec.error("hi", "missing: a limit alarm needs hi or lo")
        if "deadband" in sec.data:
            d.deadband = sec.num("deadband", None, 0.0)
    else:
        if "condition" in sec.data:
            d.condition = sec.str("condition", None, CONDITIONS[kind])
        elif d.condition is None:
            raise sec.error("condition", "missing (one of %s)" % ", ".join(CONDITIONS[kind]))
    if kind == "quality" and "stuck_s" in sec.data:
        d.stuck_s = sec.num("stuck_s", None, 1.0, 604800.0)
    if kind == "quality" and d.condition == "bad":
        slots = {p[regmap.F_NAME] for p in quality_slots(regmap.points(devices[d.device].profile))}
        if d.point not in slots:
            raise sec.error("point", "%s.%s has no quality slot (bad only applies to measured "
                            "inputs; use stale or stuck)" % (d.device, d.point))
    if kind == "device":
        if "device" in sec.data:
            d.device = sec.str("device", None, tuple(devices))
        elif d.device is None:
            raise sec.error("device", "missing (devices: %s)" % ", ".join(devices))
    if kind == "loop":
        if "loop" in sec.data:
            d.loop = sec.str("loop", None, tuple(loops))
        elif d.loop is None:
            raise sec.error("loop", "missing (loops: %s)" % (", ".join(loops) or "none"))
    if kind == "emission":
        if "pollutant" in sec.data:
            d.pollutant = sec.str("pollutant", None, ("nox", "so2"))
        elif d.pollutant is None:
            raise sec.error("pollutant", "missing (nox or so2)")
        if not accounting.get(d.pollutant + "_point"):
            raise sec.error("pollutant", "[accounting] has no %s_point to measure %s"
                            % (d.pollutant, d.pollutant.upper()))
        if "deadband" in sec.data:
            d.deadband = sec.num("deadband", None, 0.0)
    return d


def _compile(d, devices, loops, err):
    if d.suppress_when:
        try:
            d.suppress = parse_expr(d.suppress_when, devices, loops)
        except ValueError as e:
            raise err("suppress_when", str(e))
    else:
        d.suppress = None
    return d


def load_alarms(top, devices, loops, groups, accounting):
    """[alarm_settings] and [[alarms]] of a config (top: its Section) -> AlarmsCfg."""
    s = _settings(top)
    defs = defaults(devices, loops, groups, accounting, s) if s.defaults else {}
    for d in defs.values():
        _compile(d, devices, loops,
                 lambda k, m, d=d: ConfigError(top.path, "alarms", None,
                                               "default %s: %s: %s" % (d.id, k, m)))
    entries = top.raw("alarms", [])
    if isinstance(entries, dict) or not isinstance(entries, list):
        raise top.error("alarms", "expected [[alarms]] entries (an array of tables)")
    starts = _entry_lines(top.text)
    seen = set()
    for i, e in enumerate(entries):
        sec = _Entry(top.path, top.text, e if isinstance(e, dict) else {}, i,
                     starts[i] if i < len(starts) else key_line(top.text, "alarms"))
        if not isinstance(e, dict):
            raise sec.error("id", "expected a table")
        aid = sec.str("id")
        if not re.match(r"^[A-Za-z0-9_.:-]{1,80}$", aid):
            raise sec.error("id", "%r: letters, digits and _ . : - only (at most 80)" % aid)
        if aid in seen:
            raise sec.error("id", "alarm %s is defined twice" % aid)
        seen.add(aid)
        d = _apply_entry(sec, defs.get(aid), devices, loops, accounting)
        defs[aid] = _compile(d, devices, loops, sec.error)
    return AlarmsCfg(s, {k: d for k, d in defs.items() if d.enabled})
