"""SCR denitrification skid: flue gas, NOx in/out, O2, NH3 flow, dosing valve."""

# (command, safe value, feedback), in safe_hold_mask bit order.
OUTPUTS = (
    ("valve_cmd_pct", "valve_safe_pct", "valve_pos_pct"),
    ("dosing_enable", "dosing_enable_safe", "dosing_active"),
)

# Output shaping (see profiles/motor.py).
RULES = (
    ("a", "valve_rate_pct_s", "valve_rate_pct_s", None, None, None, None),
    ("p",),
)


# Discrete inputs the device sets itself (interlock state), not field signals.
# The NH3 ceiling (nh3_flow_max_kgh, nh3_molar_ratio_max) acts in outputs.py.
DERIVED = ("dosing_blocked",)


def points(rm):
    """Yield the profile's points; rm is the regmap module (profiles import nothing)."""
    point, COIL, DISCRETE, HOLDING, INPUT = rm.point, rm.COIL, rm.DISCRETE, rm.HOLDING, rm.INPUT
    yield point("flue_gas_flow_nm3h", INPUT, 32, "u32", 1, "Nm3/h")
    yield point("flue_gas_temp_c", INPUT, 34, "i16", 0.1, "C")
    yield point("nox_in_mg_nm3", INPUT, 35, "u16", 0.1, "mg/Nm3")
    yield point("nox_out_mg_nm3", INPUT, 36, "u16", 0.1, "mg/Nm3")
    yield point("o2_pct", INPUT, 37, "u16", 0.01, "%")
    yield point("nh3_flow_kgh", INPUT, 38, "u16", 0.01, "kg/h")
    yield point("nh3_slip_ppm", INPUT, 39, "u16", 0.01, "ppm")
    yield point("valve_pos_pct", INPUT, 40, "u16", 0.01, "%")
    yield point("unit_load_pct", INPUT, 41, "u16", 0.01, "%")
    yield point("analyzer_blowback", DISCRETE, 8, "bit")
    yield point("analyzer_cal", DISCRETE, 9, "bit")
    yield point("analyzer_fault", DISCRETE, 10, "bit")
    yield point("dosing_blocked", DISCRETE, 11, "bit")
    yield point("dosing_active", DISCRETE, 12, "bit")
    yield point("dosing_enable", COIL, 0, "bit", 1, "", "rw", 0, 1, 0)
    yield point("valve_safe_pct", HOLDING, 16, "u16", 0.01, "%", "rw", 0, 100, 0)
    yield point("dosing_enable_safe", HOLDING, 17, "u16", 1, "", "rw", 0, 1, 0)
    yield point("valve_cmd_pct", HOLDING, 32, "u16", 0.01, "%", "rw", 0, 100, 0)
    yield point("valve_rate_pct_s", HOLDING, 48, "u16", 0.01, "%/s", "rw", 0.1, 600, 2)
    yield point("min_catalyst_temp_c", HOLDING, 49, "i16", 0.1, "C", "rw", 150, 400, 300)
    yield point("min_flue_gas_flow_nm3h", HOLDING, 50, "u32", 1, "Nm3/h", "rw", 0, 4000000,
                200000)
    yield point("nh3_flow_max_kgh", HOLDING, 52, "u16", 0.01, "kg/h", "rw", 0, 600, 400)
    yield point("nh3_molar_ratio_max", HOLDING, 53, "u16", 0.01, "", "rw", 0.5, 2.0, 1.2)
