"""Persisted state: what must survive a restart, as JSON written atomically.

capture(obj) takes a strategy's plain attributes (numbers, strings, lists,
dicts; not those named _x: scratch buffers and the time of the last run, so
the first run after a restart counts one period, not the outage; not those
from the config: UPPER_CASE plant data and the strategy's CONFIG names such as
period_s, so a changed config wins over the state file) and the state
of its PID banks (integrators, outputs, inputs, modes);
restore(obj, saved) puts them back in place, so the first cycle after a restart
computes the same outputs the last one did (no bump). Kernels with
get_state/set_state (delay lines, Smith predictors) are kept the same way.
"""

import json
import os
from pathlib import Path

import numpy as np

from controller.loops.base import good


def _is_pid(v):
    return all(hasattr(v, a) for a in ("state", "u", "inputs", "mode", "set_mode"))


def _jsonable(v):
    try:
        json.dumps(v, allow_nan=True)
        return True
    except (TypeError, ValueError):
        return False


def capture(obj):
    out = {}
    config = set(getattr(obj, "CONFIG", ()))
    for k, v in vars(obj).items():
        if k.startswith("_") or k in config or k.isupper():
            continue  # scratch, or from the config (the config wins on restart)
        if _is_pid(v):
            out[k] = {"__pid__": {"state": v.state.tolist(), "u": v.u.tolist(),
                                  "inputs": v.inputs.tolist(), "mode": v.mode.tolist()}}
        elif hasattr(v, "get_state") and hasattr(v, "set_state"):
            out[k] = {"__obj__": v.get_state()}  # dead-time buffers, Smith predictors
        elif isinstance(v, np.ndarray):
            out[k] = {"__nd__": v.tolist()}
        elif k != "params" and _jsonable(v) and not isinstance(v, tuple):
            out[k] = v
    return out


def restore(obj, saved):
    config = set(getattr(obj, "CONFIG", ()))
    for k, v in saved.items():
        if k in config or k.isupper():
            continue  # from an older state file: the config wins
        cur = getattr(obj, k, None)
        if isinstance(v, dict) and "__pid__" in v and _is_pid(cur):
            s = v["__pid__"]
            cur.state[...] = np.array(s["state"])
            cur.u[...] = np.array(s["u"])
            cur.inputs[...] = np.array(s["inputs"])
            cur.mode[...] = np.array(s["mode"], dtype=cur.mode.dtype)
        elif isinstance(v, dict) and "__obj__" in v and hasattr(cur, "set_state"):
            cur.set_state(v["__obj__"])
        elif isinstance(v, dict) and "__nd__" in v and isinstance(cur, np.ndarray):
            cur[...] = np.array(v["__nd__"])
        elif hasattr(obj, k) and not callable(cur):
            setattr(obj, k, v)


def save(path, data):
    """Atomic: write a temp file, fsync, rename, fsync the directory (a crash or
    a power cut leaves the old file or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, allow_nan=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    # The rename itself is on disk only once the directory is: a power cut
    # right after could otherwise leave the old name (or none) behind.
    fd = os.open(str(path.parent), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(path):
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ValueError("state file %s is damaged (%s); move it away to start fresh" % (path, e))


def finite(x):
    """A usable number (the loops' rule: controller.loops.base.good)."""
    return good(x)
