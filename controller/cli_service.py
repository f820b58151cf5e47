"""`greenedge run | check | scan | mode | export`: the host service's commands."""

import asyncio
import csv
import json
import logging
import sys
from pathlib import Path

from controller.tomlcfg import ConfigError


class UserError(Exception):
    pass


def _config(path):
    from controller.config import load_config
    try:
        return load_config(path)
    except ConfigError as e:
        raise UserError(str(e))


def cmd_check(a):
    cfg = _config(a.config)
    n_reads = 0
    from controller.fieldbus.planner import plan_reads
    for d in cfg.devices.values():
        n_reads += len([r for r in plan_reads(d.profile) if r.cls == "fast"])
    print("%s: OK - %d lines, %d devices (%d fast reads per round), %d loops in %d groups"
          % (a.config, len(cfg.lines), len(cfg.devices), n_reads, len(cfg.loops), len(cfg.groups)))
    return 0


def cmd_run(a):
    from controller.runtime.service import Service
    cfg = _config(a.config)
    logging.basicConfig(level=logging.INFO if not a.quiet else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    try:
        svc = Service(cfg, status_file=a.json_status)
    except (ValueError, OSError) as e:
        raise UserError(str(e))
    status = asyncio.run(svc.run(a.duration))
    if a.json:
        print(json.dumps(status, default=str))
    return 0


def cmd_scan(a):
    """Find devices on a line with FC 43/14 (read device identification)."""
    from pymodbus.client import ModbusSerialClient
    from controller.fieldbus import timing
    bits = timing.bits_per_char(a.parity, a.stopbits)
    to = max(0.05, timing.timeout_s(3, 125, a.baud, bits, 0.01))
    c = ModbusSerialClient(a.port, baudrate=a.baud, parity=a.parity, stopbits=a.stopbits,
                           timeout=to, retries=0)
    if not c.connect():
        raise UserError("cannot open serial port %s" % a.port)
    found = []
    try:
        lo, hi = a.units
        for unit in range(lo, hi + 1):
            try:
                r = c.read_device_information(read_code=1, object_id=0, device_id=unit)
            except Exception:  # pymodbus raises ModbusIOException on silence
                continue
            if r.isError():
                found.append({"unit": unit, "vendor": None, "profile": None, "version": None,
                              "note": "answers, no 43/14 identity"})
                continue
            info = {k: (v.decode(errors="replace") if isinstance(v, bytes) else v)
                    for k, v in r.information.items()}
            found.append({"unit": unit, "vendor": info.get(0), "profile": info.get(1),
                          "version": info.get(2)})
    finally:
        c.close()
    if a.json:
        print(json.dumps(found))
    else:
        print("scanned units %d..%d on %s at %d baud: %d found" % (lo, hi, a.port, a.baud, len(found)))
        for f in found:
            print("  unit %3d  %-10s %-11s %s %s" % (f["unit"], f["vendor"], f["profile"],
                                                    f["version"], f.get("note", "")))
    return 0


def cmd_mode(a):
    from controller.runtime import control
    cfg = _config(a.config)
    outputs = {}
    for item in a.set or []:
        key, eq, val = item.partition("=")
        role, dot, point = key.partition(".")
        try:
            v = float(val)
        except ValueError:
            v = None
        if not eq or not dot or v is None:
            raise UserError("--set %r: expected ROLE.POINT=NUMBER (e.g. drive.speed_ref_pct=40)"
                            % item)
        outputs.setdefault(role, {})[point] = v
    if outputs and a.mode != "manual":
        raise UserError("--set only goes with manual")
    try:
        path = control.request(cfg, a.loop, a.mode, outputs)
    except ValueError as e:
        raise UserError(str(e))
    print("loop %s -> %s%s (%s)" % (a.loop, a.mode, (" " + json.dumps(outputs)) if outputs else "",
                                    path))
    return 0


def cmd_export(a):
    from controller.historian import export_csv
    db = Path(a.db) if a.db else _config(a.config).historian["path"]
    tags = [t for t in a.tags.split(",") if t] if a.tags else None
    out = open(a.csv, "w", newline="") if a.csv and a.csv != "-" else sys.stdout
    try:
        n = export_csv(db, out, a.t_from, a.t_to, tags)
    except FileNotFoundError as e:
        raise UserError(str(e))
    finally:
        if out is not sys.stdout:
            out.close()
    print("exported %d samples from %s" % (n, db), file=sys.stderr)
    return 0


def _units(s):
    try:
        lo, _, hi = s.partition("-")
        lo, hi = int(lo), int(hi or lo)
    except ValueError:
        raise ValueError("expected N or N-M, got %r" % s)
    if not 1 <= lo <= hi <= 247:
        raise ValueError("units %r outside 1..247" % s)
    return lo, hi


def add_parsers(sub, wrap):
    p = sub.add_parser("run", help="run the host service (poll, control, record)")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--json-status", metavar="FILE", help="keep a JSON status file current")
    p.add_argument("--duration", type=float, help="stop after this many seconds (wall)")
    p.add_argument("--json", action="store_true", help="print the final status as JSON")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=wrap(cmd_run))

    p = sub.add_parser("check", help="validate a plant config without touching the bus")
    p.add_argument("-c", "--config", required=True)
    p.set_defaults(func=wrap(cmd_check))

    p = sub.add_parser("scan", help="find devices and their profiles on a line (43/14)")
    p.add_argument("--port", required=True)
    p.add_argument("--baud", type=int, default=19200)
    p.add_argument("--parity", choices=("E", "O", "N"), default="E")
    p.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    p.add_argument("--units", type=_units, default=(1, 247), help="N or N-M (default 1-247)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=wrap(cmd_scan))

    p = sub.add_parser("mode", help="switch a loop of a running service to manual or auto")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("loop")
    p.add_argument("mode", choices=("auto", "manual"))
    p.add_argument("--set", action="append", metavar="ROLE.POINT=VALUE",
                   help="manual output (repeatable); others hold their last value")
    p.set_defaults(func=wrap(cmd_mode))

    p = sub.add_parser("export", help="export historian samples as CSV")
    p.add_argument("-c", "--config", help="plant config (its historian path)")
    p.add_argument("--db", help="historian database (instead of -c)")
    p.add_argument("--from", dest="t_from", type=float, help="plant time in s")
    p.add_argument("--to", dest="t_to", type=float, help="plant time in s")
    p.add_argument("--tags", help="comma-separated device.point tags")
    p.add_argument("--csv", default="-", help="output file (default stdout)")
    p.set_defaults(func=wrap(cmd_export))
