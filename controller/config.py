"""The plant config of the host service: one TOML file, validated in full.

    [service]      name, state_dir, stale_s, clock_speedup (bench), clock_epoch (bench)
    [lines.NAME]   kind = "rtu" | "rtu_tcp" | "tcp"; port, baud, parity, stopbits,
                   turnaround_ms (rtu); host, port (tcp kinds)
    [devices.NAME] line, unit, profile, poll_ms, slow_s, settings = {point = value}
    [groups.NAME]  period_ms            (loop groups, each its own IPO cycle)
    [loops.NAME]   plant, strategy, group, devices = {role = device},
                   process = {key = number | "device.point"}, params = {period_s = ...}
    [accounting]   grid_kg_co2_per_kwh, nox_limit_mg_nm3, so2_limit_mg_nm3,
                   nox_point, so2_point ("device.point")
    [historian]    path, commit_s, sample_s, retention_days

Every error names the file, the key path and its line (tomlcfg.ConfigError);
unknown keys are errors. Paths are relative to the config file.
"""

from dataclasses import dataclass, field
from pathlib import Path

from controller.loops import PROCESS, ROLES, STRATEGIES, strategy_class
from controller.registers import point_map
from controller.tomlcfg import ConfigError, Section, key_line, load
from firmware import regmap


@dataclass
class LineCfg:
    name: str
    kind: str
    port: str = None
    host: str = None
    tcp_port: int = 502
    baud: int = 19200
    parity: str = "E"
    stopbits: int = 1
    turnaround_s: float = 0.005


@dataclass
class DeviceCfg:
    name: str
    line: str
    unit: int
    profile: str
    poll_s: float = 0.0
    slow_s: float = 5.0
    settings: dict = field(default_factory=dict)


@dataclass
class LoopCfg:
    name: str
    plant: str
    strategy: str
    group: str
    devices: dict
    process: dict
    params: dict = field(default_factory=dict)


@dataclass
class Config:
    path: Path
    name: str
    state_dir: Path
    stale_s: float
    speedup: float
    epoch: float
    lines: dict
    devices: dict
    groups: dict           # name -> period_s (plant time)
    loops: dict
    accounting: dict
    historian: dict


_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)


def _int(sec, key, default, lo, hi):
    v = sec.num(key, default, lo, hi)
    if v != int(v):
        raise sec._err(key, "expected a whole number, got %r" % v)
    return int(v)


def _device_point(sec, key, ref, devices):
    """'device.point' -> (device, point), checked against the device's profile."""
    if not isinstance(ref, str) or ref.count(".") != 1:
        raise sec._err(key, "expected a number or \"device.point\", got %r" % (ref,))
    dev, pt = ref.split(".")
    if dev not in devices:
        raise sec._err(key, "no device %r (devices: %s)" % (dev, ", ".join(devices) or "none"))
    if pt not in point_map(devices[dev].profile):
        raise sec._err(key, "profile %s of device %s has no point %r"
                       % (devices[dev].profile, dev, pt))
    return dev, pt


def load_config(path):
    path = Path(path)
    data, text = load(path)
    top = Section(path, text, data)
    base = path.resolve().parent

    s = top.table("service")
    name = s.str("name", "greenedge")
    state_dir = base / s.str("state_dir", "state")
    stale_s = s.num("stale_s", 3.0, 0.1, 3600)
    speedup = s.num("clock_speedup", 1.0, 0.01, 1000)
    epoch = s.num("clock_epoch", 0.0, 0.0)
    s.check_unknown()

    lines = {}
    lt = top.table("lines")
    for ln in lt.data:
        sec = lt.table(ln)
        kind = sec.str("kind", None, ("rtu", "rtu_tcp", "tcp"))
        c = LineCfg(ln, kind)
        if kind == "rtu":
            c.port = sec.str("port")
        else:
            c.host = sec.str("host")
            c.tcp_port = _int(sec, "port", 502, 1, 65535)
        if kind in ("rtu", "rtu_tcp"):
            c.baud = _int(sec, "baud", 19200, 1200, 921600)
            if c.baud not in _BAUDS:
                raise sec._err("baud", "%d is not a standard rate" % c.baud)
            c.parity = sec.str("parity", "E", ("E", "O", "N"))
            c.stopbits = _int(sec, "stopbits", 1, 1, 2)
        c.turnaround_s = sec.num("turnaround_ms", 5.0, 0.0, 1000.0) / 1000.0
        sec.check_unknown()
        lines[ln] = c

    devices = {}
    dt = top.table("devices")
    units = {}
    for dn in dt.data:
        sec = dt.table(dn)
        line = sec.str("line")
        if line not in lines:
            raise sec._err("line", "no line %r (lines: %s)" % (line, ", ".join(lines) or "none"))
        unit = _int(sec, "unit", None, 1, 247)
        if (line, unit) in units:
            raise sec._err("unit", "unit %d is already device %s on line %s"
                           % (unit, units[(line, unit)], line))
        units[(line, unit)] = dn
        profile = sec.str("profile", None, regmap.PROFILES)
        d = DeviceCfg(dn, line, unit, profile, sec.num("poll_ms", 0.0, 0.0, 3.6e6) / 1000.0,
                      sec.num("slow_s", 5.0, 0.1, 3600.0))
        settings = sec.raw("settings", {})
        if not isinstance(settings, dict):
            raise sec._err("settings", "expected a table {point = value}")
        pts = point_map(profile)
        st = sec.table("settings")
        for k, v in settings.items():
            p = pts.get(k)
            if p is None or p.access != "rw" or p.table != regmap.HOLDING:
                raise st._err(k, "not a writable holding point of profile %s" % profile)
            d.settings[k] = st.num(k, None, p.min, p.max)
        sec.check_unknown()
        devices[dn] = d

    groups = {}
    gt = top.table("groups")
    for gn in gt.data:
        sec = gt.table(gn)
        groups[gn] = sec.num("period_ms", None, 10, 3.6e6) / 1000.0
        sec.check_unknown()

    loops = {}
    lt = top.table("loops")
    for name_ in lt.data:
        sec = lt.table(name_)
        plant = sec.str("plant", None, tuple(STRATEGIES))
        strat = sec.str("strategy", "optimized", tuple(STRATEGIES[plant]))
        group = sec.str("group")
        if group not in groups:
            raise sec._err("group", "no group %r (groups: %s)" % (group, ", ".join(groups) or "none"))
        params = {}
        psec_ = sec.table("params")
        allowed = ("period_s",) + tuple(strategy_class(plant, strat).PARAMS)
        for k in psec_.data:
            if k not in allowed:
                raise psec_._err(k, "not a parameter of %s/%s (known: %s)"
                                 % (plant, strat, ", ".join(allowed)))
            params[k] = psec_.num(k, None, 0.0, 1e6)
        if params:
            try:  # the strategy checks its own figures (a gain, a curve)
                strategy_class(plant, strat)(params)
            except ValueError as e:
                raise sec._err("params", str(e))
        period = params.get("period_s", strategy_class(plant, strat).period_s)
        if abs(groups[group] - period) > 1e-9:
            raise sec._err("group", "strategy %s/%s runs every %g s; group %s every %g s "
                           "(set params.period_s to run it at the group's period)"
                           % (plant, strat, period, group, groups[group]))
        dsec = sec.table("devices")
        roles = ROLES[plant]
        devmap = {}
        for role in roles:
            dn = dsec.str(role)
            if dn not in devices:
                raise dsec._err(role, "no device %r" % dn)
            if devices[dn].profile != roles[role]:
                raise dsec._err(role, "device %s has profile %s; role %s needs %s"
                                % (dn, devices[dn].profile, role, roles[role]))
            devmap[role] = dn
        dsec.check_unknown()
        psec = sec.table("process")
        proc = {}
        for key in PROCESS[plant]:
            v = psec.raw(key)
            if v is None:
                raise psec._err(key, "missing (a number or \"device.point\")")
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                proc[key] = float(psec.num(key))
            else:
                proc[key] = _device_point(psec, key, v, devices)
        psec.check_unknown()
        sec.check_unknown()
        loops[name_] = LoopCfg(name_, plant, strat, group, devmap, proc, params)

    a = top.table("accounting")
    acc = {"grid_kg_co2_per_kwh": a.num("grid_kg_co2_per_kwh", 0.581, 0.0, 5.0),
           "nox_limit_mg_nm3": a.num("nox_limit_mg_nm3", 50.0, 0.0, 1e4),
           "so2_limit_mg_nm3": a.num("so2_limit_mg_nm3", 35.0, 0.0, 1e5)}
    for key in ("nox_point", "so2_point"):
        v = a.raw(key)
        acc[key] = None if v is None else _device_point(a, key, v, devices)
    a.check_unknown()

    h = top.table("historian")
    hist = {"path": base / h.str("path", "history.db"),
            "commit_s": h.num("commit_s", 1.0, 0.05, 60.0),
            "sample_s": h.num("sample_s", 1.0, 0.01, 3600.0),
            "retention_days": h.num("retention_days", 90.0, 0.001, 36500.0)}
    h.check_unknown()
    top.check_unknown()
    if not devices:
        raise ConfigError(path, "devices", key_line(text, "devices"), "no devices configured")
    return Config(path, name, state_dir, stale_s, speedup, epoch, lines, devices, groups,
                  loops, acc, hist)
