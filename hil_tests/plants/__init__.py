"""Plant simulators for model-in-the-loop runs and the HIL bench.

Each plant exposes the points of the firmware profile(s) that instrument it:
measure() -> {device: {point: value}} (what the firmware would measure) and
actuate(device, point, value) (what its outputs drive). Parameters come from a
TOML file per plant (hil_tests/plants/params/NAME.toml); the inner integrators
are the Cython steppers (cython_ext.plants).
"""

from importlib import import_module

PLANTS = {
    "fan": ("hil_tests.plants.fan_pump", "FanPumpPlant"),
    "pump": ("hil_tests.plants.fan_pump", "FanPumpPlant"),
    "compressor": ("hil_tests.plants.compressor", "CompressorStation"),
    "scr": ("hil_tests.plants.scr", "ScrPlant"),
    "fgd": ("hil_tests.plants.fgd", "FgdPlant"),
}


def plant_class(name):
    if name not in PLANTS:
        raise ValueError("unknown plant %r (known: %s)" % (name, ", ".join(PLANTS)))
    mod, cls = PLANTS[name]
    return getattr(import_module(mod), cls)
