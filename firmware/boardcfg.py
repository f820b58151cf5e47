"""Board I/O config checks (fwconfig.validate, when ain/din/outputs are given):
ain / din / outputs name the profile's points with the right roles, pins are
used once. Raises ValueError naming the key."""

import regmap


def _pin_ok(v):
    return isinstance(v, (int, str)) and not isinstance(v, bool)


def check(out):
    """ain / din / outputs name the profile's points with the right roles."""
    if out["hal"] == "sim":
        raise ValueError("config ain/din/outputs: pins exist on a board only")
    if out["link_uart"] is not None and (out["ain"] or out["din"]):
        raise ValueError("config ain/din: in sim-input mode the plant link sets the inputs")
    prof = out["profile"]
    pts = {}
    for p in regmap.iter_points(prof):
        pts[p[regmap.F_NAME]] = p
    outs = regmap.outputs(prof)
    device_set = [o[2] for o in outs] + list(regmap.derived(prof))
    pins = [p for p in (out["adc_pins"] or ()) if p is not None]
    if out["uart"]:
        pins.append(out["uart"].get("de"))

    def pin(key, v):
        if not _pin_ok(v):
            raise ValueError("config %s: pin %r is not a number or a name" % (key, v))
        if v in pins:
            raise ValueError("config %s: pin %r is already used" % (key, v))
        pins.append(v)

    ain = out["ain"] or []
    if not isinstance(ain, list):
        raise ValueError("config ain: expected a list of inputs, got %r" % (ain,))
    for k in range(len(ain)):
        a = ain[k]
        key = "ain[%d]" % k
        if not isinstance(a, dict) or any(x not in a for x in ("point", "pin", "lo", "hi")):
            raise ValueError("config %s: needs point, pin, lo, hi; got %r" % (key, a))
        for x in a:
            if x not in ("point", "pin", "lo", "hi", "tau_s", "counts_per_ma", "offset", "status"):
                raise ValueError("config %s: unknown key %r" % (key, x))
        p = pts.get(a["point"])
        if p is None or p[regmap.F_TABLE] != regmap.INPUT or p[regmap.F_ADDR] < regmap.MEAS_BASE:
            raise ValueError("config %s.point: %r is not a measured input of %s"
                             % (key, a["point"], prof))
        pin(key + ".pin", a["pin"])
        for x in ("lo", "hi", "tau_s", "counts_per_ma", "offset"):
            if x in a and (not isinstance(a[x], (int, float)) or isinstance(a[x], bool)):
                raise ValueError("config %s.%s: %r is not a number" % (key, x, a[x]))
        if a["lo"] == a["hi"]:
            raise ValueError("config %s: lo and hi are both %r" % (key, a["lo"]))
        if a.get("tau_s", 0) < 0 or a.get("counts_per_ma", 1) <= 0:
            raise ValueError("config %s: tau_s >= 0 and counts_per_ma > 0" % key)
        for st in a.get("status", ()):
            q = pts.get(st)
            if q is None or q[regmap.F_TABLE] != regmap.DISCRETE:
                raise ValueError("config %s.status: %r is not a discrete input of %s"
                                 % (key, st, prof))
    din = out["din"] or {}
    if not isinstance(din, dict):
        raise ValueError("config din: expected {point: pin}, got %r" % (din,))
    for name in din:
        p = pts.get(name)
        if p is None or p[regmap.F_TABLE] != regmap.DISCRETE or p[regmap.F_ADDR] < 8:
            raise ValueError("config din.%s: not a field discrete input of %s" % (name, prof))
        if name in device_set:
            raise ValueError("config din.%s: set by the device (an output's feedback or an"
                             " interlock), not a field signal" % name)
        spec = din[name]
        pin("din." + name, spec["pin"] if isinstance(spec, dict) else spec)
    o = out["outputs"] or {}
    if not isinstance(o, dict):
        raise ValueError("config outputs: expected {command point: pin}, got %r" % (o,))
    cmds = [x[0] for x in outs]
    for name in o:
        if name not in cmds:
            raise ValueError("config outputs.%s: not a command of %s (%s)"
                             % (name, prof, ", ".join(cmds)))
        spec = o[name]
        if isinstance(spec, dict):
            f = spec.get("freq", 1000)
            if not isinstance(f, int) or not 10 <= f <= 100000:
                raise ValueError("config outputs.%s.freq: %r outside 10..100000 Hz" % (name, f))
        pin("outputs." + name, spec["pin"] if isinstance(spec, dict) else spec)
