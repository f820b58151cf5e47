"""Operator requests to a running service: loop modes and manual outputs.

`greenedge mode -c plant.toml LOOP manual --set drive.speed_ref_pct=40` writes
state_dir/control.json (atomically); the service reads it within 0.25 s.
    {"loops": {"fan": {"mode": "manual", "outputs": {"drive": {"speed_ref_pct": 40.0}}}}}
Every value is checked against the loop's device profile (writable, in range)
when written, and each change becomes a command through the service's command
gate (runtime/gate.py: role operator, audited) when read.
"""

import json
from pathlib import Path

from controller.runtime import state as st

MODES = ("auto", "manual")


def check(cfg, loop, mode, outputs):
    if loop not in cfg.loops:
        raise ValueError("no loop %r (loops: %s)" % (loop, ", ".join(cfg.loops) or "none"))
    if mode not in MODES:
        raise ValueError("mode %r is not auto or manual" % (mode,))
    from controller.runtime.gate import check_outputs
    return {"mode": mode, "outputs": check_outputs(cfg, loop, outputs)}


def read(path, cfg):
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError("cannot read %s: %s" % (path, e))
    loops = data.get("loops") if isinstance(data, dict) else None
    if not isinstance(loops, dict):
        raise ValueError("%s: expected {\"loops\": {...}}" % path)
    return {name: check(cfg, name, req.get("mode"), req.get("outputs"))
            for name, req in loops.items()}


def request(cfg, loop, mode, outputs):
    """Validate and merge one request into the control file; returns its path."""
    req = check(cfg, loop, mode, outputs)
    path = cfg.state_dir / "control.json"
    loops = {}
    if path.exists():
        try:
            loops = json.loads(path.read_text()).get("loops", {})
        except ValueError:
            loops = {}
    loops[loop] = req
    st.save(path, {"loops": loops})
    return path
