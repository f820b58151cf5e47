"""`greenedge run | check | scan | mode | export`: the host service's commands."""

import asyncio
import json
import logging
import sqlite3
import sys
from pathlib import Path

from controller.errors import UserError


def _config(path):
    from controller.config import load_config
    return load_config(path)  # ConfigError is a UserError: file, line, key


def cmd_check(a):
    cfg = _config(a.config)
    n_reads = 0
    from controller.fieldbus.planner import plan_reads
    for d in cfg.devices.values():
        n_reads += len([r for r in plan_reads(d.profile) if r.cls == "fast"])
    print("%s: OK - %d lines, %d devices (%d fast reads per round), %d loops in %d groups"
          % (a.config, len(cfg.lines), len(cfg.devices), n_reads, len(cfg.loops), len(cfg.groups)))
    from controller.historian import sizing
    h = cfg.historian
    tags = sum(len(r.points) for d in cfg.devices.values() for r in plan_reads(d.profile))
    per_day, total, fits = sizing(tags, h["sample_s"], h["retention_days"], h["max_mb"])
    print("historian: %d polled tags (+ loop commands) every %g s ~ %.0f MB a day; %g days ~ %.0f MB %s max_mb %g%s"
          % (tags, h["sample_s"], per_day, h["retention_days"], total,
             "within" if fits else "OVER", h["max_mb"],
             "" if fits else " (the oldest samples will be pruned first: %.1f days kept)"
             % (h["max_mb"] / per_day)))
    defs = cfg.alarms.defs.values()
    own = sum(1 for d in defs if d.origin == "config")
    print("alarms: %d defined, %d of them added or changed by [[alarms]] (docs/alarms.md)"
          % (len(defs), own))
    return 0


def cmd_run(a):
    from controller.runtime.service import Service
    cfg = _config(a.config)
    _north_options(cfg, a)
    logging.basicConfig(level=logging.INFO if not a.quiet else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    clock = None
    if cfg.bench is not None:
        # A HIL bench config: the bench's scaled plant clock (the CLI is the one
        # place that may reach into the bench).
        from hil_tests.clock import ScaledClock
        clock = ScaledClock(cfg.bench["speedup"], cfg.bench["epoch"])
    try:
        svc = Service(cfg, status_file=a.json_status, clock=clock)
    except (ValueError, OSError, sqlite3.Error) as e:  # a damaged state file, an unwritable DB
        raise UserError(str(e))
    status = asyncio.run(svc.run(a.duration))
    if a.json:
        print(json.dumps(status, default=str))
    return 0


def _north_options(cfg, a):
    """--metrics / --opcua over the config's [metrics] / [opcua] tables."""
    from controller.north import parse_hostport
    cfg.north = dict(getattr(cfg, "north", None) or {})
    if getattr(a, "metrics", None):
        parse_hostport(a.metrics, "--metrics")
        cfg.north["metrics"] = {"listen": a.metrics}
    if getattr(a, "opcua", None):
        from controller.config.north import parse_endpoint
        parse_endpoint(a.opcua, "--opcua")
        if not cfg.north.get("opcua"):
            raise UserError("--opcua needs an [opcua] table in %s (certificate, private_key, "
                            "users: docs/integration.md; `greenedge certs` makes the "
                            "certificate)" % a.config)
        cfg.north["opcua"] = dict(cfg.north["opcua"], endpoint=a.opcua)
    if getattr(a, "mqtt", None):
        from controller.config.north import mqtt_table
        cfg.north["mqtt"] = mqtt_table(cfg, a.mqtt)
    if getattr(a, "hmi", None):
        from controller.north.hmi.config import check_bind, hmi_table
        parse_hostport(a.hmi, "--hmi")
        if cfg.north.get("hmi"):
            cfg.north["hmi"] = dict(cfg.north["hmi"], listen=a.hmi)
        else:
            users = (cfg.north.get("opcua") or {}).get("users")
            if users is None:
                raise UserError("--hmi needs a users file: an [hmi] table with users = "
                                "\"users.toml\" in %s (docs/hmi.md)" % a.config)
            cfg.north["hmi"] = hmi_table(listen=a.hmi, users=users)
        check_bind(cfg.north["hmi"], "--hmi")


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
    """CSV to stdout or a file; the file is written beside its target and
    renamed into place only when the export succeeded, and never over the
    historian database itself."""
    import os
    import tempfile
    from controller.historian import export_csv
    if not a.db and not a.config:
        raise UserError("give -c CONFIG or --db FILE")
    db = Path(a.db) if a.db else _config(a.config).historian["path"]
    tags = [t for t in a.tags.split(",") if t] if a.tags else None
    if a.csv and a.csv != "-":
        target = Path(a.csv)
        if target.exists() and db.exists() and os.path.samefile(target, db):
            raise UserError("--csv %s is the historian database itself" % a.csv)
        fd, tmp = tempfile.mkstemp(prefix=".export-", dir=target.resolve().parent)
        try:
            with os.fdopen(fd, "w", newline="") as out:
                n = export_csv(db, out, a.t_from, a.t_to, tags)
            os.replace(tmp, target)
        except FileNotFoundError as e:
            raise UserError(str(e))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    else:
        try:
            n = export_csv(db, sys.stdout, a.t_from, a.t_to, tags)
        except FileNotFoundError as e:
            raise UserError(str(e))
    print("exported %d samples from %s" % (n, db), file=sys.stderr)
    return 0
