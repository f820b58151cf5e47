"""Loading the plant config (schema: controller/config/schema.py): one TOML
file validated in full, one function per table.

Every error names the file, the key path and its line (ConfigError, a
UserError); unknown keys are errors. Paths are relative to the config file.
"""

from pathlib import Path

from controller.config.schema import BAUDS, Config, DeviceCfg, LineCfg, LoopCfg
from controller.config.toml import ConfigError, Section, key_line, load
from controller.loops import PROCESS, ROLES, SETPOINTS, STRATEGIES, strategy_class
from controller.registers import point_map
from firmware import regmap


def whole(sec, key, default, lo, hi):
    """A whole number in lo..hi (a public check for any loader)."""
    v = sec.num(key, default, lo, hi)
    if v != int(v):
        raise sec.error(key, "expected a whole number, got %r" % v)
    return int(v)


# Holding points the device protocol writes itself, never as a setting.
HOST_OWNED = ("arm", "settings_lock", "host_heartbeat")


def settings_key(sec, default):
    """settings_key = [word, word]: the settings lock's unlock key, as the
    device has it (two different words in 2..65535; 1 locks)."""
    v = sec.raw("settings_key")
    if v is None:
        return tuple(default)
    if not isinstance(v, list) or len(v) != 2 or v[0] == v[1] or any(
            isinstance(w, bool) or not isinstance(w, int) or not 2 <= w <= 0xFFFF for w in v):
        raise sec.error("settings_key", "expected two different words in 2..65535, e.g. "
                        "[0x5AFE, 0xC0DE], got %r" % (v,))
    return tuple(v)


def device_point(sec, key, ref, devices):
    """'device.point' -> (device, point), checked against the device's profile."""
    if not isinstance(ref, str) or ref.count(".") != 1:
        raise sec.error(key, "expected a number or \"device.point\", got %r" % (ref,))
    dev, pt = ref.split(".")
    if dev not in devices:
        raise sec.error(key, "no device %r (devices: %s)" % (dev, ", ".join(devices) or "none"))
    if pt not in point_map(devices[dev].profile):
        raise sec.error(key, "profile %s of device %s has no point %r"
                        % (devices[dev].profile, dev, pt))
    return dev, pt


def _service(top, base):
    s = top.table("service")
    out = {"name": s.str("name", "greenedge"), "state_dir": base / s.str("state_dir", "state"),
           "stale_s": s.num("stale_s", 3.0, 0.1, 3600)}
    s.check_unknown()
    return out


def _bench(top):
    if "bench" not in top.data:
        return None
    b = top.table("bench")
    out = {"speedup": b.num("clock_speedup", 1.0, 0.01, 1000),
           "epoch": b.num("clock_epoch", None, 1.0)}
    b.check_unknown()
    return out


def _lines(top):
    lines = {}
    lt = top.table("lines")
    for ln in lt.data:
        sec = lt.table(ln)
        kind = sec.str("kind", None, ("rtu", "rtu_tcp", "tcp"))
        c = LineCfg(ln, kind)
        if kind == "rtu":
            c.port = sec.str("port")
            if not c.port.startswith("/"):
                raise sec.error("port", "expected the serial port's absolute path, got %r "
                                "(/dev/ttyUSB0, or better /dev/serial/by-id/usb-...: the same "
                                "adapter whatever ttyUSBn it gets after a replug)" % c.port)
            # Kept as written, never resolved: a by-id link is followed at each
            # (re)open, so a replugged adapter is found under its new ttyUSBn.
        else:
            c.host = sec.str("host")
            c.tcp_port = whole(sec, "port", 502, 1, 65535)
        if kind in ("rtu", "rtu_tcp"):
            c.baud = whole(sec, "baud", 19200, 1200, 921600)
            if c.baud not in BAUDS:
                raise sec.error("baud", "%d is not a standard rate" % c.baud)
            c.parity = sec.str("parity", "E", ("E", "O", "N"))
            c.stopbits = whole(sec, "stopbits", 1, 1, 2)
        c.turnaround_s = sec.num("turnaround_ms", 5.0, 0.0, 1000.0) / 1000.0
        c.settings_key = settings_key(sec, c.settings_key)
        sec.check_unknown()
        lines[ln] = c
    return lines


def _devices(top, lines):
    devices = {}
    dt = top.table("devices")
    units = {}
    for dn in dt.data:
        sec = dt.table(dn)
        line = sec.str("line")
        if line not in lines:
            raise sec.error("line", "no line %r (lines: %s)" % (line, ", ".join(lines) or "none"))
        unit = whole(sec, "unit", None, 1, 247)
        if (line, unit) in units:
            raise sec.error("unit", "unit %d is already device %s on line %s"
                            % (unit, units[(line, unit)], line))
        units[(line, unit)] = dn
        profile = sec.str("profile", None, regmap.PROFILES)
        d = DeviceCfg(dn, line, unit, profile, sec.num("poll_ms", 0.0, 0.0, 3.6e6) / 1000.0,
                      sec.num("slow_s", 5.0, 0.1, 3600.0))
        d.settings_key = settings_key(sec, lines[line].settings_key)
        settings = sec.raw("settings", {})
        if not isinstance(settings, dict):
            raise sec.error("settings", "expected a table {point = value}")
        pts = point_map(profile)
        st = sec.table("settings")
        for k in settings:
            p = pts.get(k)
            if p is None or p.access != "rw" or p.table != regmap.HOLDING \
                    or k in HOST_OWNED:
                raise st.error(k, "not a writable holding point of profile %s%s" % (
                    profile, " (the host writes it itself)" if k in HOST_OWNED else ""))
            d.settings[k] = st.num(k, None, p.min, p.max)
        sec.check_unknown()
        devices[dn] = d
    if not devices:
        raise ConfigError(top.path, "devices", key_line(top.text, "devices"),
                          "no devices configured")
    return devices


def _groups(top):
    groups = {}
    gt = top.table("groups")
    for gn in gt.data:
        sec = gt.table(gn)
        groups[gn] = sec.num("period_ms", None, 10, 3.6e6) / 1000.0
        sec.check_unknown()
    return groups


def loop_params(sec, plant, strat, data=None):
    """A loop's params table, checked by name and by the strategy itself (a gain,
    a curve); returns {name: value}. Public: the command gate checks a
    parameter change with the same rules."""
    psec = sec.table("params") if data is None else sec
    allowed = ("period_s",) + tuple(strategy_class(plant, strat).PARAMS)
    params = {}
    for k in psec.data:
        if k not in allowed:
            raise psec.error(k, "not a parameter of %s/%s (known: %s)"
                             % (plant, strat, ", ".join(allowed)))
        params[k] = psec.num(k, None, 0.0, 1e6)
    if params:
        try:
            strategy_class(plant, strat)(params)
        except ValueError as e:
            raise sec.error("params", str(e))
    return params


def _loop(lt, name, groups, devices):
    sec = lt.table(name)
    plant = sec.str("plant", None, tuple(STRATEGIES))
    strat = sec.str("strategy", "optimized", tuple(STRATEGIES[plant]))
    group = sec.str("group")
    if group not in groups:
        raise sec.error("group", "no group %r (groups: %s)" % (group, ", ".join(groups) or "none"))
    params = loop_params(sec, plant, strat)
    period = params.get("period_s", strategy_class(plant, strat).period_s)
    if abs(groups[group] - period) > 1e-9:
        raise sec.error("group", "strategy %s/%s runs every %g s; group %s every %g s "
                        "(set params.period_s to run it at the group's period)"
                        % (plant, strat, period, group, groups[group]))
    dsec = sec.table("devices")
    devmap = {}
    for role, profile in ROLES[plant].items():
        dn = dsec.str(role)
        if dn not in devices:
            raise dsec.error(role, "no device %r" % dn)
        if devices[dn].profile != profile:
            raise dsec.error(role, "device %s has profile %s; role %s needs %s"
                             % (dn, devices[dn].profile, role, profile))
        devmap[role] = dn
    dsec.check_unknown()
    psec = sec.table("process")
    proc = {}
    for key in PROCESS[plant]:
        v = psec.raw(key)
        if v is None:
            raise psec.error(key, "missing (a number or \"device.point\")")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            proc[key] = float(psec.num(key, None, 0.0))
            if key.endswith("design_m3s") and proc[key] <= 0:  # a design figure divides
                raise psec.error(key, "must be > 0, got %g" % proc[key])
        else:
            proc[key] = device_point(psec, key, v, devices)
    for key, (lo, hi_key) in SETPOINTS.get(plant, {}).items():
        v, hi = proc.get(key), proc.get(hi_key)
        if isinstance(v, float) and isinstance(hi, float) and not lo <= v <= hi:
            raise psec.error(key, "%g outside %g..%g (%s)" % (v, lo, hi, hi_key))
    psec.check_unknown()
    sec.check_unknown()
    return LoopCfg(name, plant, strat, group, devmap, proc, params)


def _heartbeat_fits(top, devices, loops, bench):
    """A loop writes its devices' heartbeat once per run (runtime/protocol.py):
    a comm-loss timeout shorter than two of its runs (the loop's period in wall
    time, or the device's poll period, whichever is longer) would trip the
    device while the loop is healthy."""
    speedup = bench["speedup"] if bench else 1.0
    for ln, lc in loops.items():
        period_w = lc.params.get("period_s", strategy_class(lc.plant, lc.strategy).period_s) \
            / speedup
        for dn in lc.devices.values():
            d = devices[dn]
            t = d.settings.get("comm_loss_timeout_s")
            run_s = max(period_w, d.poll_s)
            if t is not None and t < 2 * run_s:
                sec = top.table("devices").table(dn).table("settings")
                raise sec.error("comm_loss_timeout_s", "%g s is less than two runs of loop %s "
                                "(one every %g s): its heartbeat could not keep the device "
                                "armed" % (t, ln, run_s))


def _accounting(top, devices):
    a = top.table("accounting")
    acc = {"grid_kg_co2_per_kwh": a.num("grid_kg_co2_per_kwh", 0.581, 0.0, 5.0),
           "nox_limit_mg_nm3": a.num("nox_limit_mg_nm3", 50.0, 0.0, 1e4),
           "so2_limit_mg_nm3": a.num("so2_limit_mg_nm3", 35.0, 0.0, 1e5),
           "o2_ref_pct": a.num("o2_ref_pct", 6.0, 0.0, 20.0)}
    for key in ("nox", "so2"):
        v = a.raw(key + "_point")
        ref = None if v is None else device_point(a, key + "_point", v, devices)
        acc[key + "_point"] = ref
        o2 = a.raw(key + "_o2_point")
        if o2 is not None:
            acc[key + "_o2_point"] = device_point(a, key + "_o2_point", o2, devices)
        elif ref is not None:
            if "o2_pct" not in point_map(devices[ref[0]].profile):
                raise a.error(key + "_point", "device %s has no o2_pct point: give %s_o2_point "
                              "(emission means are at the reference O2)" % (ref[0], key))
            acc[key + "_o2_point"] = (ref[0], "o2_pct")
        else:
            acc[key + "_o2_point"] = None
    a.check_unknown()
    return acc


def _historian(top, base):
    h = top.table("historian")
    hist = {"path": base / h.str("path", "history.db"),
            "commit_s": h.num("commit_s", 1.0, 0.05, 60.0),
            "sample_s": h.num("sample_s", 1.0, 0.01, 3600.0),
            "retention_days": h.num("retention_days", 90.0, 0.001, 36500.0),
            "max_mb": h.num("max_mb", 2048.0, 1.0, 1e7)}
    h.check_unknown()
    return hist


def load_config(path):
    path = Path(path)
    data, text = load(path)
    top = Section(path, text, data)
    base = path.resolve().parent
    svc = _service(top, base)
    bench = _bench(top)
    lines = _lines(top)
    devices = _devices(top, lines)
    groups = _groups(top)
    lt = top.table("loops")
    loops = {n: _loop(lt, n, groups, devices) for n in lt.data}
    _heartbeat_fits(top, devices, loops, bench)
    acc = _accounting(top, devices)
    hist = _historian(top, base)
    # Here, not at the top: controller/alarms/config.py reads controller.config.toml.
    from controller.alarms.config import load_alarms
    alarms = load_alarms(top, devices, loops, groups, acc)  # [alarm_settings], [[alarms]]
    from controller.config.north import check_areas, load_north
    north = load_north(top, base)  # [metrics], [opcua]: controller/config/north.py
    check_areas(top, north, devices)
    top.check_unknown()
    cfg = Config(path, svc["name"], svc["state_dir"], svc["stale_s"], lines, devices, groups,
                 loops, acc, hist, bench)
    cfg.alarms = alarms  # controller/alarms/config.py: AlarmsCfg
    cfg.north = north    # the northbound interfaces' tables (None: off)
    return cfg
