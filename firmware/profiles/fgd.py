"""Wet FGD skid: SO2 in/out, pH, recirculation pumps, limestone feeder, blower."""

# (command, safe value, feedback), in safe_hold_mask bit order.
OUTPUTS = tuple(
    ("pump%d_run" % i, "pump%d_run_safe" % i, "pump%d_running" % i) for i in range(1, 6)
) + (
    ("feeder_cmd_pct", "feeder_safe_pct", "feeder_pos_pct"),
    ("blower_cmd_pct", "blower_safe_pct", "blower_pos_pct"),
)

# Output shaping (see profiles/motor.py).
RULES = tuple(("r", "pump_min_on_s", "pump_min_off_s", "max_starts_per_h") for _ in range(5)) + (
    ("a", "feeder_rate_pct_s", "feeder_rate_pct_s", None, None, None, None),
    ("p",),
)


def points(rm):
    """Yield the profile's points; rm is the regmap module (profiles import nothing)."""
    point, COIL, DISCRETE, HOLDING, INPUT = rm.point, rm.COIL, rm.DISCRETE, rm.HOLDING, rm.INPUT
    yield point("so2_in_mg_nm3", INPUT, 32, "u16", 1, "mg/Nm3")
    yield point("so2_out_mg_nm3", INPUT, 33, "u16", 0.1, "mg/Nm3")
    yield point("ph", INPUT, 34, "u16", 0.001, "pH")
    yield point("o2_pct", INPUT, 35, "u16", 0.01, "%")
    yield point("flue_gas_flow_nm3h", INPUT, 36, "u32", 1, "Nm3/h")
    for i in range(5):
        yield point("pump%d_power_kw" % (i + 1), INPUT, 38 + i, "u16", 0.1, "kW")
    yield point("limestone_feed_tph", INPUT, 43, "u16", 0.001, "t/h")
    yield point("blower_power_kw", INPUT, 44, "u16", 0.1, "kW")
    yield point("feeder_pos_pct", INPUT, 45, "u16", 0.01, "%")
    yield point("blower_pos_pct", INPUT, 46, "u16", 0.01, "%")
    yield point("orp_mv", INPUT, 47, "i16", 1, "mV")
    for i in range(5):
        yield point("pump%d_running" % (i + 1), DISCRETE, 8 + i, "bit")
    yield point("so2_analyzer_fault", DISCRETE, 13, "bit")
    for i in range(5):
        yield point("pump%d_run" % (i + 1), COIL, i, "bit", 1, "", "rw", 0, 1, 0)
    for i in range(5):
        yield point("pump%d_run_safe" % (i + 1), HOLDING, 16 + i, "u16", 1, "", "rw",
                    0, 1, 0)
    yield point("feeder_safe_pct", HOLDING, 21, "u16", 0.01, "%", "rw", 0, 100, 0)
    yield point("blower_safe_pct", HOLDING, 22, "u16", 0.01, "%", "rw", 0, 100, 100)
    yield point("feeder_cmd_pct", HOLDING, 32, "u16", 0.01, "%", "rw", 0, 100, 0)
    yield point("blower_cmd_pct", HOLDING, 33, "u16", 0.01, "%", "rw", 0, 100, 0)
    yield point("pump_min_on_s", HOLDING, 48, "u16", 1, "s", "rw", 0, 7200, 300)
    yield point("pump_min_off_s", HOLDING, 49, "u16", 1, "s", "rw", 0, 7200, 300)
    yield point("feeder_rate_pct_s", HOLDING, 50, "u16", 0.01, "%/s", "rw", 0.1, 600, 1)
    yield point("max_starts_per_h", HOLDING, 51, "u16", 1, "", "rw", 1, 400, 4)
