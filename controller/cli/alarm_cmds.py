"""`greenedge alarms`: the alarm list of a running or stopped service (its
historian's alarm_state table), and acknowledge / shelve / unshelve requests
that the running service passes through its command gate."""

import getpass
import json
import math
import time

from controller.errors import UserError


def _fmt(v):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return "%.4g" % v if isinstance(v, float) else str(v)


def _when(t):
    """Plant time: Unix time on a plant (UTC shown), seconds on a bench clock before its epoch."""
    if t is None:
        return "-"
    if t > 1e8:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
    return "%.1f s" % t


def cmd_alarms(a):
    from controller.cli.service_cmds import _config
    cfg = _config(a.config)
    actions = [(k, v) for k, v in (("ack", a.ack), ("shelve", a.shelve), ("unshelve", a.unshelve))
               if v]
    if len(actions) > 1:
        raise UserError("one of --ack, --shelve, --unshelve at a time")
    if actions:
        from controller.alarms.requests import request
        kind, alarm = actions[0]
        try:
            who = "cli:" + getpass.getuser()
        except (KeyError, OSError):
            who = "cli"
        try:
            path, seq = request(cfg, kind, alarm, who, a.minutes, a.reason)
        except ValueError as e:
            raise UserError(str(e))
        print("%s %s: request %d queued in %s; a running service applies it through its "
              "command gate within a second (greenedge alarms shows it; a request is not "
              "replayed when a service starts later)" % (kind, alarm, seq, path))
        return 0
    if a.minutes is not None or a.reason is not None:
        raise UserError("--minutes and --reason go with --shelve (or --reason with --ack)")
    from controller.historian import alarm_states
    db = cfg.historian["path"]
    try:
        rows = alarm_states(db, active=a.active)
    except FileNotFoundError as e:
        raise UserError("%s (has the service run with this config?)" % e)
    if a.json:
        print(json.dumps(rows))
        return 0
    print("%d alarm%s%s in %s" % (len(rows), "" if len(rows) == 1 else "s",
                                  " not normal" if a.active else "", db))
    if rows:
        print("%-30s %-23s %3s %9s %-19s %-12s %s" % ("id", "state", "pri", "value",
                                                       "since (UTC)", "who", "text"))
    for r in rows:
        print("%-30s %-23s %3s %9s %-19s %-12s %s%s" % (
            r["id"], r["state"], r["priority"], _fmt(r["value"]), _when(r["t"]),
            r["who"] or "-", r["text"] or "",
            (" [%s]" % r["reason"]) if r["reason"] else ""))
    return 0
