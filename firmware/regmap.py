"""GreenEdge register map: the one contract between firmware, host and docs.

Importable by MicroPython (the firmware builds its register bank from it) and by
CPython (the host's poll planner, the CLI and the docs generator read it).

A point is a plain tuple (see the F_* indexes below):
    (name, table, address, type, scale, unit, access, min, max, default, count)
- table: 'coil', 'discrete', 'input' or 'holding' (Modbus 0x/1x/3x/4x).
- address: zero-based protocol address (what goes in the PDU).
- type: 'u16', 'i16', 'u32', 'i32', 'f32', or 'bit' for coils and discrete inputs.
  32-bit types occupy two consecutive registers, HIGH WORD FIRST (big-endian
  word order); f32 is IEEE 754 single precision.
- scale: engineering value = raw * scale (f32 points have scale 1).
- access: 'ro' or 'rw'. min/max are in engineering units and bound every write.
- default: value at power-up for rw points (the firmware's safe boot image).
- count: 1 for a scalar; n for a read-only array of n values of the type
  (e.g. a waveform capture), n * words registers long.

Layout rules (the same for every profile):
- input 0..8 identity and status, 16..19 quality words, 32.. measurements;
- holding 0..2 arming and comm-loss settings, 3 the settings lock (see
  docs/safety.md), 4 the host heartbeat, 16.. safe-state values, 32..
  commands, 48.. settings; everything but the commands (32..47) and the
  heartbeat is a safety setting: never written by broadcast, refused with
  exception 04 while the settings are locked. The heartbeat is written by the
  host's healthy loops, locked or not, never by broadcast (supervisor.py);
- discrete 0..4 device state, 8.. profile inputs; coils 0.. profile commands.
Holes between the blocks are deliberate: reading across one is exception 02.

Quality: every measured input point from address 32 on owns a 2-bit slot, in
address order, packed 8 to a register from input 16 (slot k -> register
16 + k // 8, bits 2*(k % 8)). 0 good, 1 uncertain, 2 bad (NAMUR NE43 fault or
not yet measured), 3 not wired.
"""

try:
    from micropython import const
except ImportError:  # CPython: the host imports this file too
    def const(x):  # type: ignore[misc]
        return x

MAP_VERSION = const(1)
FW_VERSION = (1, 0, 0)
VENDOR = "GreenEdge"

PROFILES = ("motor", "compressor", "scr", "fgd")
PROFILE_IDS = {"motor": 1, "compressor": 2, "scr": 3, "fgd": 4}

COIL = "coil"
DISCRETE = "discrete"
INPUT = "input"
HOLDING = "holding"
TABLES = (COIL, DISCRETE, INPUT, HOLDING)
_PKG = __name__[:-len("regmap")]  # "" on a device, "firmware." on the host
_codec = __import__(_PKG + "codec", None, None, ["encode"])
# One codec for firmware and host (see codec.py); re-exported here.
WORDS = _codec.WORDS
encode = _codec.encode
decode = _codec.decode
sort_key = _codec.sort_key

F_NAME = const(0)
F_TABLE = const(1)
F_ADDR = const(2)
F_TYPE = const(3)
F_SCALE = const(4)
F_UNIT = const(5)
F_ACCESS = const(6)
F_MIN = const(7)
F_MAX = const(8)
F_DEFAULT = const(9)
F_COUNT = const(10)

CMD_BASE = const(32)  # holding: commands from here ...
SETTINGS_BASE = const(48)  # ... to here; the rest of the holding table is safety settings
QUALITY_BASE = const(16)
QUALITY_WORDS = const(4)
MEAS_BASE = const(32)
# Quality codes: defined in codec.py, which stays resident on a running device
# (this map is dropped after boot; plantlink and analog load later).
Q_GOOD = _codec.Q_GOOD
Q_UNCERTAIN = _codec.Q_UNCERTAIN
Q_BAD = _codec.Q_BAD
Q_NOT_WIRED = _codec.Q_NOT_WIRED

# Status word (input 3) bits.
ST_ARMED = const(0x0001)
ST_SAFE_STATE = const(0x0002)
ST_COMM_LOST = const(0x0004)
ST_INTERLOCK = const(0x0008)
ST_WDT_RESET = const(0x0010)
ST_QUALITY_BAD = const(0x0020)
ST_QUALITY_UNCERTAIN = const(0x0040)
ST_CONFIG_ERROR = const(0x0080)
ST_SAMPLING_OVERRUN = const(0x0100)
RESET_CAUSES = ("power_on", "watchdog", "soft", "hard", "deep_sleep", "unknown")


def point(name, table, addr, typ, scale=1, unit="", access="ro", lo=None, hi=None,
          default=None, count=1):
    return (name, table, addr, typ, scale, unit, access, lo, hi, default, count)


def size(p):
    """Registers (or bits) a point occupies."""
    return WORDS[p[F_TYPE]] * p[F_COUNT]


# Common-block addresses the firmware uses by number (written once, here).
IR_STATUS = const(3)
IR_INTERLOCKS = const(4)
IR_RESET_CAUSE = const(5)
IR_UPTIME = const(6)
IR_TRIPS = const(8)
HR_ARM = const(0)
HR_TIMEOUT = const(1)
HR_HOLD_MASK = const(2)
HR_LOCK = const(3)
HR_HEARTBEAT = const(4)
# settings_lock (HR_LOCK) reads 0 open, 1 locked by key, 2 by jumper; writing
# LOCK_WORD locks, the two unlock words in a row open it (a board may set its
# own words: config settings_key; docs/safety.md).
LOCK_WORD = const(1)
UNLOCK_KEY_1 = const(0x5AFE)
UNLOCK_KEY_2 = const(0xC0DE)
DI_ARMED = const(0)
DI_SAFE = const(1)
DI_COMM_LOST = const(2)
DI_INTERLOCK = const(3)
DI_QBAD = const(4)


def _common(n_outputs):
    hold_max = (1 << n_outputs) - 1
    return [
        point("map_version", INPUT, 0, "u16"),
        point("profile_id", INPUT, 1, "u16"),
        point("fw_version", INPUT, 2, "u16"),
        point("status", INPUT, IR_STATUS, "u16"),
        point("interlocks", INPUT, IR_INTERLOCKS, "u16"),
        point("reset_cause", INPUT, IR_RESET_CAUSE, "u16"),
        point("uptime_s", INPUT, IR_UPTIME, "u32", 1, "s"),
        point("comm_loss_trips", INPUT, IR_TRIPS, "u16"),
        point("quality_0", INPUT, 16, "u16"),
        point("quality_1", INPUT, 17, "u16"),
        point("quality_2", INPUT, 18, "u16"),
        point("quality_3", INPUT, 19, "u16"),
        point("arm", HOLDING, HR_ARM, "u16", 1, "", "rw", 0, 1, 0),
        point("comm_loss_timeout_s", HOLDING, HR_TIMEOUT, "u16", 0.1, "s", "rw", 0.5, 3600, 10),
        point("safe_hold_mask", HOLDING, HR_HOLD_MASK, "u16", 1, "", "rw", 0, hold_max, 0),
        point("settings_lock", HOLDING, HR_LOCK, "u16", 1, "", "rw", 0, 65535, 0),
        point("host_heartbeat", HOLDING, HR_HEARTBEAT, "u16", 1, "", "rw", 0, 65535, 0),
        point("armed", DISCRETE, DI_ARMED, "bit"),
        point("safe_state", DISCRETE, DI_SAFE, "bit"),
        point("comm_lost", DISCRETE, DI_COMM_LOST, "bit"),
        point("interlock_active", DISCRETE, DI_INTERLOCK, "bit"),
        point("quality_bad_any", DISCRETE, DI_QBAD, "bit"),
    ]


def metering_points():
    """Three-phase metering block shared by the motor and compressor profiles (yields)."""
    yield point("voltage_l1_v", INPUT, 32, "u16", 0.1, "V")
    yield point("voltage_l2_v", INPUT, 33, "u16", 0.1, "V")
    yield point("voltage_l3_v", INPUT, 34, "u16", 0.1, "V")
    yield point("current_l1_a", INPUT, 35, "u16", 0.01, "A")
    yield point("current_l2_a", INPUT, 36, "u16", 0.01, "A")
    yield point("current_l3_a", INPUT, 37, "u16", 0.01, "A")
    yield point("power_kw", INPUT, 38, "i32", 0.001, "kW")
    yield point("apparent_power_kva", INPUT, 40, "u32", 0.001, "kVA")
    yield point("power_factor", INPUT, 42, "i16", 0.001, "")
    yield point("frequency_hz", INPUT, 43, "u16", 0.01, "Hz")
    yield point("energy_kwh", INPUT, 44, "u32", 0.001, "kWh")
    yield point("thd_i_pct", INPUT, 46, "u16", 0.1, "%")
    yield point("wave_i_l1_a", INPUT, 128, "i16", 0.01, "A", count=128)


def check_profile(profile):
    if profile not in PROFILE_IDS:
        raise ValueError("unknown profile %r (one of %s)" % (profile, ", ".join(PROFILES)))


def _profile_module(profile):
    check_profile(profile)
    # Lazy: a device loads only its own profile (each costs RAM on a board).
    return __import__(_PKG + "profiles." + profile, None, None, ["points"])


def rules(profile):
    """Output shaping rules of a profile (see profiles/motor.py)."""
    return _profile_module(profile).RULES


def _this():
    import sys
    return sys.modules[__name__]


def outputs(profile):
    """(command, safe value, feedback) point names, in safe_hold_mask bit order."""
    return _profile_module(profile).OUTPUTS


def derived(profile):
    """Discrete inputs the device sets itself besides the outputs' feedbacks."""
    return getattr(_profile_module(profile), "DERIVED", ())


def iter_points(profile):
    """Yield a profile's points (common block first) one at a time.

    The firmware walks the map with this so a board never holds the whole
    list in RAM; the host uses points().
    """
    mod = _profile_module(profile)
    for p in _common(len(mod.OUTPUTS)):
        yield p
    for p in mod.points(_this()):
        yield p


def release(profile):
    """Drop a loaded profile module (a device does this once its bank is built)."""
    import sys
    sys.modules.pop(_PKG + "profiles." + profile, None)


def points(profile):
    """All points of a profile (common block first), as a list of tuples."""
    return list(iter_points(profile))
