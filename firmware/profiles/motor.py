"""Motor profile: 3-phase metering plus a VFD drive (fan or pump train).

Points are listed with explicit addresses; see regmap for the layout rules.
"""

# (command, safe value, feedback), in safe_hold_mask bit order.
OUTPUTS = (
    ("speed_ref_pct", "speed_safe_pct", "speed_actual_pct"),
    ("run_cmd", "run_safe", "running"),
    ("damper_cmd_pct", "damper_safe_pct", "damper_pos_pct"),
)

# Output shaping, per output (OUTPUTS order): ("a", ramp up, ramp down, min, max,
# skip low, skip high) setting registers for analog outputs, ("r", min on, min
# off, starts per hour) for run relays, ("p",) passed through.
RULES = (
    ("a", "ramp_up_pct_s", "ramp_down_pct_s", "min_speed_pct", "max_speed_pct",
     "skip_low_pct", "skip_high_pct"),
    ("p",),
    ("p",),
)


def points(rm):
    """Yield the profile's points; rm is the regmap module (profiles import nothing)."""
    point, COIL, DISCRETE, HOLDING, INPUT = rm.point, rm.COIL, rm.DISCRETE, rm.HOLDING, rm.INPUT
    yield from rm.metering_points()
    yield point("drive_output_hz", INPUT, 47, "u16", 0.01, "Hz")
    yield point("speed_actual_pct", INPUT, 48, "u16", 0.01, "%")
    yield point("process_pv", INPUT, 49, "f32", 1, "eng")
    yield point("motor_temp_c", INPUT, 51, "i16", 0.1, "C")
    yield point("damper_pos_pct", INPUT, 52, "u16", 0.01, "%")
    yield point("process_sp", INPUT, 53, "f32", 1, "eng")
    yield point("running", DISCRETE, 8, "bit")
    yield point("drive_fault", DISCRETE, 9, "bit")
    yield point("at_speed", DISCRETE, 10, "bit")
    yield point("run_cmd", COIL, 0, "bit", 1, "", "rw", 0, 1, 0)
    yield point("fault_reset", COIL, 1, "bit", 1, "", "rw", 0, 1, 0)
    yield point("speed_safe_pct", HOLDING, 16, "u16", 0.01, "%", "rw", 0, 100, 50)
    yield point("run_safe", HOLDING, 17, "u16", 1, "", "rw", 0, 1, 0)
    yield point("damper_safe_pct", HOLDING, 18, "u16", 0.01, "%", "rw", 0, 100, 100)
    yield point("speed_ref_pct", HOLDING, 32, "u16", 0.01, "%", "rw", 0, 100, 0)
    yield point("damper_cmd_pct", HOLDING, 33, "u16", 0.01, "%", "rw", 0, 100, 100)
    yield point("ramp_up_pct_s", HOLDING, 48, "u16", 0.01, "%/s", "rw", 0.1, 600, 5)
    yield point("ramp_down_pct_s", HOLDING, 49, "u16", 0.01, "%/s", "rw", 0.1, 600, 5)
    yield point("min_speed_pct", HOLDING, 50, "u16", 0.01, "%", "rw", 0, 100, 20)
    yield point("max_speed_pct", HOLDING, 51, "u16", 0.01, "%", "rw", 0, 100, 100)
    yield point("skip_low_pct", HOLDING, 52, "u16", 0.01, "%", "rw", 0, 100, 0)
    yield point("skip_high_pct", HOLDING, 53, "u16", 0.01, "%", "rw", 0, 100, 0)
