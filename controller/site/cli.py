"""`greenedge site -c site.toml` (the primary host) and
`greenedge site report -c site.toml --from T --to T [--csv FILE]`."""

import csv
import datetime as dt
import json
import signal
import sys
import threading
import time

from controller.errors import UserError
from controller.site import need_psycopg, store as st
from controller.site.config import dsn_with_password, load_site


def parse_time(s, what):
    try:
        t = dt.datetime.fromisoformat(s)
    except ValueError:
        raise UserError("%s: expected an ISO 8601 time (2026-12-02T14:00, UTC unless it has "
                        "an offset), got %r" % (what, s)) from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def writer_factory(cfg):
    psycopg = need_psycopg()
    db = cfg["database"]
    dsn = dsn_with_password(db["dsn"], db["password"])

    def make():
        try:
            return st.Store(st.connect(dsn, psycopg))
        except psycopg.OperationalError as e:
            raise UserError("site database (%s): %s" % (db["dsn"], str(e).strip())) from None
    return make


def cmd_site(a):
    cfg = load_site(a.config)
    if a.action == "report":
        return cmd_report(a, cfg)
    if a.action is not None:
        raise UserError("greenedge site: unknown action %r (report, or none to run)" % a.action)
    from controller.site.host import PrimaryHost
    host = PrimaryHost(cfg, writer_factory(cfg))
    # --hmi checked (bind rule, users, TLS files) before anything starts
    hmi = make_hmi(a, cfg, host) if getattr(a, "hmi", None) else None
    host.start()
    if hmi is not None:
        try:
            hmi.start()
        except BaseException:
            host.stop()
            raise
        print("site HMI on %s" % hmi.url, file=sys.stderr, flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    t_end = time.monotonic() + a.duration if a.duration else None
    try:
        while not done.wait(1.0):
            if t_end is not None and time.monotonic() >= t_end:
                break
    finally:
        if hmi is not None:
            hmi.stop()
        host.stop()
    s = host.status()
    if a.json:
        print(json.dumps(s, sort_keys=True))
    else:
        print("site %s: %d messages, %d rows (%d new), %d rebirth requests, %d too old"
              % (cfg["host_id"], s["messages"], s["rows"], s["inserted"], s["rebirths"],
                 s["too_old"]), file=sys.stderr)
    return 0


def report_factory(cfg):
    """New connections as the read-only reporter (report_dsn; dsn when none)."""
    psycopg = need_psycopg()
    db = cfg["database"]
    dsn = (dsn_with_password(db["report_dsn"], db["report_password"]) if db["report_dsn"]
           else dsn_with_password(db["dsn"], db["password"]))
    return lambda: st.connect(dsn, psycopg)


def make_hmi(a, cfg, host):
    """The site HMI (controller/site/hmi.py) on --hmi, users from --hmi-users."""
    from pathlib import Path
    from controller.north.hmi.config import hmi_table
    from controller.site.hmi import SiteHmi
    h = hmi_table(listen=a.hmi, users=Path(a.hmi_users) if a.hmi_users else None,
                  certificate=Path(a.hmi_cert) if a.hmi_cert else None,
                  private_key=Path(a.hmi_key) if a.hmi_key else None)
    return SiteHmi(host, cfg, h, report_factory(cfg),
                   state_dir=Path(a.config).resolve().parent)


def cmd_report(a, cfg):
    if not a.t_from or not a.t_to:
        raise UserError("greenedge site report: --from and --to are required")
    t0, t1 = parse_time(a.t_from, "--from"), parse_time(a.t_to, "--to")
    if t1 <= t0:
        raise UserError("greenedge site report: --to must be after --from")
    psycopg = need_psycopg()
    db = cfg["database"]
    dsn = (dsn_with_password(db["report_dsn"], db["report_password"]) if db["report_dsn"]
           else dsn_with_password(db["dsn"], db["password"]))
    try:
        conn = st.connect(dsn, psycopg)
    except psycopg.OperationalError as e:
        raise UserError("site database: %s" % str(e).strip()) from None
    try:
        rows = st.energy_report(conn, t0, t1, cfg["areas"])
    finally:
        conn.close()
    head = ("area", "node", "energy_kwh", "co2_kg")
    if a.csv:
        f = sys.stdout if a.csv == "-" else open(a.csv, "w", newline="")
        w = csv.writer(f)
        w.writerow(head)
        for r in rows:
            w.writerow((r[0], r[1], "%.3f" % r[2], "%.3f" % r[3]))
        if f is not sys.stdout:
            f.close()
        return 0
    print("energy %s .. %s (UTC)" % (t0.isoformat(), t1.isoformat()))
    print("%-24s %-16s %12s %10s" % ("area", "node", "energy kWh", "CO2 kg"))
    for r in rows:
        print("%-24s %-16s %12.3f %10.3f" % r)
    return 0
