"""Control strategies behind one interface (see base.Strategy).

STRATEGIES[plant][name] -> class. Baselines are what plants run today;
"optimized" is GreenEdge's strategy for the plant (docs/results.md).
"""

from importlib import import_module

STRATEGIES = {
    "fan": {"baseline": ("controller.loops.fan_pump", "DamperBaseline"),
            "optimized": ("controller.loops.fan_pump", "VsdStrategy")},
    "pump": {"baseline": ("controller.loops.fan_pump", "DamperBaseline"),
             "optimized": ("controller.loops.fan_pump", "PumpVsdStrategy")},
    "compressor": {"baseline": ("controller.loops.compressor", "CascadeBaseline"),
                   "optimized": ("controller.loops.compressor", "SequencerStrategy")},
    "scr": {"baseline": ("controller.loops.denox", "PiBaseline"),
            "optimized": ("controller.loops.denox", "FeedforwardSmithStrategy")},
    "fgd": {"baseline": ("controller.loops.desox", "AllPumpsBaseline"),
            "optimized": ("controller.loops.desox", "PumpStagingStrategy")},
}

# The devices a strategy reads and drives (role -> firmware profile) and the
# process values it needs besides them (setpoints, design figures).
_MOTOR = {"drive": "motor"}
ROLES = {"fan": _MOTOR, "pump": _MOTOR,
         "compressor": {m: "compressor" for m in ("c1", "c2", "c3", "vsd")},
         "scr": {"scr": "scr"}, "fgd": {"fgd": "fgd"}}
PROCESS = {"fan": ("flow_sp_m3s", "flow_design_m3s"),
           "pump": ("flow_sp_m3s", "flow_design_m3s"),
           "compressor": (), "scr": (), "fgd": ()}
# Set points an operator may change through the command gate (when the config
# gives them as numbers): key -> (lowest, the process key that is the highest).
SETPOINTS = {"fan": {"flow_sp_m3s": (0.0, "flow_design_m3s")},
             "pump": {"flow_sp_m3s": (0.0, "flow_design_m3s")}}


def strategy_class(plant, name):
    if plant not in STRATEGIES:
        raise ValueError("unknown plant %r (known: %s)" % (plant, ", ".join(STRATEGIES)))
    if name not in STRATEGIES[plant]:
        raise ValueError("unknown strategy %r for %s (known: %s)"
                         % (name, plant, ", ".join(STRATEGIES[plant])))
    mod, cls = STRATEGIES[plant][name]
    return getattr(import_module(mod), cls)
