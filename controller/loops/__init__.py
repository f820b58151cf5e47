"""Control strategies behind one interface (see base.Strategy).

STRATEGIES[plant][name] -> class. Baselines are what plants run today
("typical", and "best-practice" alias "baseline"); "optimized" is GreenEdge's
strategy for the plant (docs/results.md).
"""

from importlib import import_module

_FP = "controller.loops.fan_pump"
_C, _N, _D = "controller.loops.compressor", "controller.loops.denox", "controller.loops.desox"
# "typical": what many plants still run; "best-practice": what well-run plants
# run (each with its source in docs/models.md, "Baselines"); "baseline" is an
# alias for "best-practice"; "optimized": GreenEdge's strategy.
STRATEGIES = {
    "fan": {"typical": (_FP, "DamperBaseline"), "best-practice": (_FP, "DamperBaseline"),
            "optimized": (_FP, "VsdStrategy")},
    "pump": {"typical": (_FP, "DamperBaseline"), "best-practice": (_FP, "DamperBaseline"),
             "optimized": (_FP, "PumpVsdStrategy")},
    "compressor": {"typical": (_C, "CascadeBaseline"), "best-practice": (_C, "StaggeredCascadeBaseline"),
                   "optimized": (_C, "SequencerStrategy")},
    "scr": {"typical": (_N, "PiBaseline"), "best-practice": (_N, "RatioPiBaseline"),
            "optimized": (_N, "FeedforwardSmithStrategy")},
    "fgd": {"typical": (_D, "AllPumpsBaseline"), "best-practice": (_D, "LoadStagingBaseline"),
            "optimized": (_D, "PumpStagingStrategy")},
}
ALIASES = {"baseline": "best-practice"}
for _p in STRATEGIES.values():
    for _a, _to in ALIASES.items():
        _p[_a] = _p[_to]
# The names a user may choose (CLI): every plant has each of them.
STRATEGY_NAMES = ("typical", "best-practice", "baseline", "optimized")

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
