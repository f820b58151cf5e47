"""Operator requests to a running service's alarms, from the command line.

`greenedge alarms -c plant.toml --ack ID` (or --shelve ID --minutes M --reason
TEXT, --unshelve ID) appends a request to state_dir/alarm_requests.json
(atomically, the newest 100 kept):
    {"requests": [{"seq": 7, "wall": 1764660000.0, "kind": "ack", "alarm": "fan1.down",
                   "who": "cli:ann", "reason": null, "minutes": null}]}
The service's alarm engine reads the file when it changes and turns each new
request into a command through the command gate (role operator, audited), so
a request is checked like any other: the alarm must be in a state that allows
it. Requests written while no service runs are not replayed at its start.
"""

import json
import time

from controller.alarms.engine import KINDS, REQUESTS
from controller.runtime import state as st

KEEP = 100


def request(cfg, kind, alarm, who, minutes=None, reason=None):
    """Check what can be checked without the service, append; returns (path, seq)."""
    if kind not in KINDS:
        raise ValueError("unknown alarm command %r (%s)" % (kind, ", ".join(KINDS)))
    if alarm not in cfg.alarms.defs:
        near = [a for a in cfg.alarms.defs if alarm.split(".")[0] in a][:8]
        raise ValueError("no alarm %r in %s%s" % (alarm, cfg.path, (" (%s ...)" % ", ".join(near))
                                                  if near else ""))
    if kind == "shelve":
        mx = cfg.alarms.settings.max_shelve_min
        if minutes is None or not 0 < minutes <= mx:
            raise ValueError("--shelve needs --minutes in 0 < M <= %g" % mx)
        if not reason or not reason.strip():
            raise ValueError("--shelve needs a --reason")
    path = cfg.state_dir / REQUESTS
    reqs = []
    if path.exists():
        try:
            reqs = json.loads(path.read_text()).get("requests", [])
        except (ValueError, AttributeError):
            reqs = []
    seq = max((r.get("seq", 0) for r in reqs if isinstance(r, dict)), default=0) + 1
    reqs.append({"seq": seq, "wall": time.time(), "kind": kind, "alarm": alarm, "who": who,
                 "minutes": minutes, "reason": reason})
    st.save(path, {"requests": reqs[-KEEP:]})
    return path, seq
