"""Compressor profile: metering, discharge pressure, load/unload, VSD."""

# (command, safe value, feedback), in safe_hold_mask bit order.
OUTPUTS = (
    ("run_cmd", "run_safe", "running"),
    ("load_cmd", "load_safe", "loaded"),
    ("speed_ref_pct", "speed_safe_pct", "speed_actual_pct"),
)

# Output shaping (see profiles/motor.py). Loading is never delayed: unloading is
# the safe direction and the maximum-pressure interlock must act at once.
RULES = (
    ("r", "min_on_s", "min_off_s", "max_starts_per_h"),
    ("p",),
    ("a", "speed_ramp_pct_s", "speed_ramp_pct_s", None, None, None, None),
)


# Discrete inputs the device sets itself (interlock state), not field signals.
DERIVED = ("high_pressure_unload",)


def points(rm):
    """Yield the profile's points; rm is the regmap module (profiles import nothing)."""
    point, COIL, DISCRETE, HOLDING, INPUT = rm.point, rm.COIL, rm.DISCRETE, rm.HOLDING, rm.INPUT
    yield from rm.metering_points()
    yield point("discharge_pressure_bar", INPUT, 47, "u16", 0.001, "bar")
    yield point("discharge_temp_c", INPUT, 48, "i16", 0.1, "C")
    yield point("drive_output_hz", INPUT, 49, "u16", 0.01, "Hz")
    yield point("speed_actual_pct", INPUT, 50, "u16", 0.01, "%")
    yield point("run_hours_h", INPUT, 51, "u32", 0.1, "h")
    yield point("starts_last_hour", INPUT, 53, "u16", 1, "")
    yield point("running", DISCRETE, 8, "bit")
    yield point("loaded", DISCRETE, 9, "bit")
    yield point("comp_fault", DISCRETE, 10, "bit")
    yield point("high_pressure_unload", DISCRETE, 11, "bit")
    yield point("run_cmd", COIL, 0, "bit", 1, "", "rw", 0, 1, 0)
    yield point("load_cmd", COIL, 1, "bit", 1, "", "rw", 0, 1, 0)
    yield point("fault_reset", COIL, 2, "bit", 1, "", "rw", 0, 1, 0)
    yield point("run_safe", HOLDING, 16, "u16", 1, "", "rw", 0, 1, 0)
    yield point("load_safe", HOLDING, 17, "u16", 1, "", "rw", 0, 1, 0)
    yield point("speed_safe_pct", HOLDING, 18, "u16", 0.01, "%", "rw", 0, 100, 0)
    yield point("speed_ref_pct", HOLDING, 32, "u16", 0.01, "%", "rw", 0, 100, 0)
    yield point("max_pressure_bar", HOLDING, 48, "u16", 0.001, "bar", "rw", 4, 16, 8.5)
    yield point("min_on_s", HOLDING, 49, "u16", 1, "s", "rw", 0, 3600, 30)
    yield point("min_off_s", HOLDING, 50, "u16", 1, "s", "rw", 0, 3600, 60)
    yield point("max_starts_per_h", HOLDING, 51, "u16", 1, "", "rw", 1, 400, 6)
    yield point("speed_ramp_pct_s", HOLDING, 52, "u16", 0.01, "%/s", "rw", 0.1, 600, 10)
