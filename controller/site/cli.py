"""`greenedge site -c site.toml` (the primary host) and
`greenedge site report -c site.toml --from T --to T [--csv FILE | --json]`: the
site KPIs (store.site_kpis; docs/site.md, "Site KPIs")."""

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
        r = st.site_kpis(conn, t0, t1, cfg)
    finally:
        conn.close()
    if a.json:
        print(json.dumps(r, sort_keys=True))
        return 0
    if a.csv:
        f = sys.stdout if a.csv == "-" else open(a.csv, "w", newline="")
        w = csv.writer(f)
        w.writerow(CSV_HEAD)
        for row in csv_rows(r):
            w.writerow(row)
        if f is not sys.stdout:
            f.close()
        return 0
    print_report(r)
    return 0


# The first four columns are the energy report's; a row per edge, then one per
# area (node empty: its baseline and saving), the total last.
CSV_HEAD = ("area", "node", "energy_kwh", "co2_kg", "reported_h", "baseline_kwh",
            "saving_kwh", "saving_pct", "cost", "saving_cost", "currency", "active_alarms")


def _f(v, fmt="%.3f"):
    return "" if v is None else fmt % v


def csv_rows(r):
    cur = r["currency"] or ""
    for area in r["areas"]:
        for n in (x for x in r["nodes"] if x["area"] == area["area"]):
            yield (n["area"], n["node"], _f(n["energy_kwh"]), _f(n["co2_kg"]),
                   _f(n["reported_h"]), "", "", "", _f(n["cost"], "%.2f"), "", cur,
                   _f(n["active_alarms"], "%d"))
        yield (area["area"], "", _f(area["energy_kwh"]), _f(area["co2_kg"]),
               _f(area["reported_h"]), _f(area["baseline_kwh"]), _f(area["saving_kwh"]),
               _f(area["saving_pct"], "%.1f"), _f(area["cost"], "%.2f"),
               _f(area["saving_cost"], "%.2f"), cur, _f(area["active_alarms"], "%d"))
    t = r["total"]
    yield ("total", "", _f(t["energy_kwh"]), _f(t["co2_kg"]), "", _f(t["baseline_kwh"]),
           _f(t["saving_kwh"]), _f(t["saving_pct"], "%.1f"), _f(t["cost"], "%.2f"),
           _f(t["saving_cost"], "%.2f"), cur, _f(t["active_alarms"], "%d"))


def print_report(r):
    def c(v, fmt="%.3f"):
        return "-" if v is None else fmt % v
    cur = r["currency"] or ""
    print("site report %s .. %s (UTC)" % (r["from"], r["to"]))
    print("%-20s %-14s %11s %9s %11s %11s %8s %10s %9s %7s" % (
        "area", "node", "energy kWh", "reported h", "baseline kWh", "saving kWh", "saving %",
        "CO2 kg", "cost " + cur, "alarms"))
    for area in r["areas"]:
        for n in (x for x in r["nodes"] if x["area"] == area["area"]):
            print("%-20s %-14s %11s %9s %11s %11s %8s %10s %9s %7s" % (
                n["area"], n["node"], c(n["energy_kwh"]), c(n["reported_h"], "%.2f"), "", "",
                "", c(n["co2_kg"]), c(n["cost"], "%.2f"), c(n["active_alarms"], "%d")))
        print("%-20s %-14s %11s %9s %11s %11s %8s %10s %9s %7s" % (
            area["area"], "(area)", c(area["energy_kwh"]), c(area["reported_h"], "%.2f"),
            c(area["baseline_kwh"]), c(area["saving_kwh"]), c(area["saving_pct"], "%.1f"),
            c(area["co2_kg"]), c(area["cost"], "%.2f"), c(area["active_alarms"], "%d")))
    t = r["total"]
    print("%-20s %-14s %11s %9s %11s %11s %8s %10s %9s %7s" % (
        "total", "", c(t["energy_kwh"]), "", c(t["baseline_kwh"]), c(t["saving_kwh"]),
        c(t["saving_pct"], "%.1f"), c(t["co2_kg"]), c(t["cost"], "%.2f"),
        c(t["active_alarms"], "%d")))
    if r["emissions"]:
        print("\nemission hourly means (mg/Nm3 at the reference O2, as each edge's CEMS "
              "accounting closed them)")
        print("%-20s %-14s %-6s %-25s %8s %8s %s" % ("area", "node", "stack", "hour (UTC)",
                                                      "mean", "limit", "exceeded"))
        for e in r["emissions"]:
            print("%-20s %-14s %-6s %-25s %8s %8s %s" % (
                e["area"], e["node"], e["stack"], e["hour"],
                c(e["mean_mg_nm3"], "%.2f") if e["mean_mg_nm3"] is not None else "invalid",
                c(e["limit_mg_nm3"], "%.1f"),
                "-" if e["exceeded"] is None else "yes" if e["exceeded"] else "no"))
    listed = [(area["area"], x) for area in r["areas"] for x in area["alarms"]]
    print("\nactive alarms at %s: %s" % (r["to"], len(listed) if listed else "none"))
    for area, x in listed:
        print("  %-20s %-14s %-32s %-15s priority %s since %s" % (
            area, x["node"], x["id"], x["state"], c(x["priority"], "%d"), x["since"]))
