"""Device configuration: defaults, validation, and where it comes from.

On a board: /config.json written by `greenedge firmware build`. On the unix port:
command-line options (--profile, --unit, --port, --baud, ...) over the same
defaults. A bad value raises ValueError naming the key and showing the value.
"""

import regmap

DEFAULTS = {
    "profile": None,          # motor | compressor | scr | fgd
    "unit": None,             # Modbus unit id 1..247
    "baud": 115200,
    "parity": "E",            # 8E1 is the Modbus default
    "port": None,             # unix port: tty path
    "hal": "sim",             # sim | rp2 | esp32 | stm32
    "uart": None,             # board: {"id":0,"tx":0,"rx":1,"de":2}
    "wdt_ms": 2000,
    "comm_loss_timeout_s": None,  # None: the register map default
    "model": "",
    "reset_cause": None,
    "metering": False,        # run the metering task (motor and compressor profiles)
    "set_rate_hz": 2400,      # metering sample sets per second
    "nominal_hz": 50,
    "rated_kw": 160.0,        # sim load model and current calibration
    "state_dir": None,        # where the energy counter is kept ("/" on a board)
    "energy_step_wh": 1000,   # energy saved every this many Wh (the most a power cut loses)
    "flash_cycles": 10000,    # erase cycles of the state flash (10k: STM32 internal, no wear levelling)
    "flash_life_years": 10,   # the energy saves fit this life: one save per 31,536 s at the defaults
    "link": None,             # unix port: UDP port of the HIL plant link (plantlink.py)
    "link_tty": None,         # unix port: the plant link over a tty instead
    "link_uart": None,        # board in sim-input mode: {"id","tx","rx","de"} of the link UART
    # Metering on a board (adcsrc.py, hal/adc_*.py):
    "adc_pins": None,         # ADC inputs of V1 V2 V3 I1 I2 I3 (null: not wired)
    "cal_v": None,            # V per ADC count, per phase (boards: required)
    "cal_i": None,            # A per ADC count, per phase (boards: required)
    "phase_deg": None,        # current sensors' phase lead per phase (CT error), degrees
    "block_cycles": None,     # mains cycles per block (default 5 streaming, 1 in bursts)
    "burst_every_ms": 1000,   # ESP32/STM32 (and the sim with adc_burst): one burst this often
    "adc_burst": False,       # sim ADC: sample in bursts like an ESP32/STM32 board
    "settings": None,         # {holding point: value}: the board's limits, set at boot
    "settings_locked": False, # boot with the safety settings locked (key sequence opens them)
    "settings_lock_pin": None,  # board: input pin of the settings-lock jumper (fitted to GND: locked)
    "settings_key": None,     # [first, second] word of the unlock sequence (default 0x5AFE, 0xC0DE)
    "start_delay_s": 0,       # on/off outputs stay off this long after boot (stagger units)
    "start_stagger_s": 0,     # and each further on/off output of the unit this much longer
    # Field signals on a board's pins (boardio.py):
    "ain": None,              # [{point, pin, lo, hi, tau_s, counts_per_ma, offset, status}]
    "din": None,              # {discrete point: pin | {pin, invert}}
    "outputs": None,          # {command point: pin | {pin, freq}}
}

_MODEL_MAX = 64
_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)


def _int(cfg, key, lo, hi):
    v = cfg[key]
    try:
        v = int(v)
    except (TypeError, ValueError):
        raise ValueError("config %s: expected an integer, got %r" % (key, v))
    if not lo <= v <= hi:
        raise ValueError("config %s: %r outside %d..%d" % (key, v, lo, hi))
    cfg[key] = v


def validate(cfg):
    out = dict(DEFAULTS)
    for k in cfg:
        if k.startswith("_"):
            continue  # "_about" and the like: comments in a board file
        if k not in DEFAULTS:
            raise ValueError("config: unknown key %r" % (k,))
        out[k] = cfg[k]
    if out["profile"] not in regmap.PROFILES:
        raise ValueError("config profile: %r is not one of %s"
                         % (out["profile"], ", ".join(regmap.PROFILES)))
    if out["unit"] is None:
        raise ValueError("config unit: missing (1..247)")
    _int(out, "unit", 1, 247)
    _int(out, "baud", 1200, 921600)
    if out["baud"] not in _BAUDS:
        raise ValueError("config baud: %r is not a standard rate" % (out["baud"],))
    if out["parity"] not in ("E", "O", "N"):
        raise ValueError("config parity: %r is not E, O or N" % (out["parity"],))
    _int(out, "wdt_ms", 100, 8000)
    _int(out, "set_rate_hz", 500, 20000)
    _int(out, "energy_step_wh", 1, 1000000)
    _int(out, "flash_cycles", 1000, 1000000000)
    _int(out, "flash_life_years", 1, 50)
    if out["nominal_hz"] not in (50, 60):
        raise ValueError("config nominal_hz: %r is not 50 or 60" % (out["nominal_hz"],))
    if out["comm_loss_timeout_s"] is not None:
        v = out["comm_loss_timeout_s"]
        if not isinstance(v, (int, float)) or not 0.5 <= v <= 3600:
            raise ValueError("config comm_loss_timeout_s: %r outside 0.5..3600" % (v,))
    m = out["model"]
    if not isinstance(m, str) or len(m.encode()) > _MODEL_MAX:
        raise ValueError("config model: at most %d bytes (it goes into the 43/14 identification"
                         " reply), got %r" % (_MODEL_MAX, m))
    if out["hal"] not in ("sim", "rp2", "esp32", "stm32"):
        raise ValueError("config hal: %r is not sim, rp2, esp32 or stm32" % (out["hal"],))
    if out["hal"] == "sim" and not out["port"]:
        raise ValueError("config port: the unix port needs a tty path")
    if out["link"] is not None:
        _int(out, "link", 1024, 65535)
        if out["hal"] != "sim":
            raise ValueError("config link: the plant link exists on the sim HAL only")
    if out["link_tty"] is not None and out["hal"] != "sim":
        raise ValueError("config link_tty: a tty path exists on the unix port only")
    if out["link_uart"] is not None:
        u = out["link_uart"]
        if out["hal"] == "sim" or not isinstance(u, dict) \
                or any(k not in u for k in ("id", "tx", "rx", "de")):
            raise ValueError("config link_uart: a board's {id, tx, rx, de}, got %r" % (u,))
    if not isinstance(out["settings_locked"], bool):
        raise ValueError("config settings_locked: %r is not true or false" % (out["settings_locked"],))
    _key(out)
    lp = out["settings_lock_pin"]
    if lp is not None and (out["hal"] == "sim" or not isinstance(lp, (int, str))
                           or isinstance(lp, bool)):
        raise ValueError("config settings_lock_pin: a board's pin number or name, got %r" % (lp,))
    for k in ("start_delay_s", "start_stagger_s"):
        v = out[k]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 3600:
            raise ValueError("config %s: %r outside 0..3600 s" % (k, v))
    _metering(out)
    _settings(out)
    if out["ain"] is not None or out["din"] is not None or out["outputs"] is not None:
        import boardcfg  # board-only checks: not loaded on the unix port's heap
        try:
            boardcfg.check(out)
        finally:
            import sys
            sys.modules.pop("boardcfg", None)
    if out["hal"] != "sim":
        u = out["uart"]
        if not isinstance(u, dict) or any(k not in u for k in ("id", "tx", "rx", "de")):
            raise ValueError("config uart: need id, tx, rx and de pins, got %r" % (u,))
    return out


def _numbers(cfg, key, n, lo, hi):
    v = cfg[key]
    if not isinstance(v, (list, tuple)) or len(v) != n \
            or any(not isinstance(x, (int, float)) or not lo <= x <= hi for x in v):
        raise ValueError("config %s: %d numbers in %g..%g, got %r" % (key, n, lo, hi, v))


def _metering(out):
    if out["metering"] and out["profile"] not in ("motor", "compressor"):
        raise ValueError("config metering: the %s profile has no metering points" % out["profile"])
    board = out["hal"] != "sim"
    if out["metering"] and board:
        for k in ("adc_pins", "cal_v", "cal_i"):
            if out[k] is None:
                raise ValueError("config %s: a board with metering needs it" % k)
    if out["adc_pins"] is not None:
        from adcmap import chan_map
        try:
            chan_map(out["adc_pins"])
        except ValueError as e:
            raise ValueError("config " + str(e))
    if out["cal_v"] is not None or out["cal_i"] is not None:
        _numbers(out, "cal_v", 3, 1e-6, 1e3)
        _numbers(out, "cal_i", 3, 1e-6, 1e4)
    if out["phase_deg"] is not None:
        _numbers(out, "phase_deg", 3, -20, 20)
    if out["block_cycles"] is not None:
        _int(out, "block_cycles", 1, 20)
    _int(out, "burst_every_ms", 100, 60000)
    if out["adc_burst"] and board:
        raise ValueError("config adc_burst: the sim ADC's option (a board's HAL decides)")


def _key(out):
    """The unlock sequence: two different words, neither 0 nor 1 (1 locks)."""
    k = out["settings_key"]
    if k is None:
        return
    if not isinstance(k, (list, tuple)) or len(k) != 2 or k[0] == k[1] or any(
            not isinstance(w, int) or isinstance(w, bool) or not 2 <= w <= 0xFFFF for w in k):
        raise ValueError("config settings_key: two different words in 2..65535, got %r" % (k,))


def _settings(out):
    """Board limits: writable holding points of the profile, within their range."""
    st = out["settings"]
    if st is None:
        return
    if not isinstance(st, dict):
        raise ValueError("config settings: expected {point: value}, got %r" % (st,))
    left = dict(st)
    for p in regmap.iter_points(out["profile"]):
        name = p[regmap.F_NAME]
        if name not in left:
            continue
        v = left.pop(name)
        if p[regmap.F_TABLE] != regmap.HOLDING or p[regmap.F_ACCESS] != "rw" \
                or name in ("arm", "settings_lock", "host_heartbeat"):
            raise ValueError("config settings.%s: not a writable setting" % name)
        if not isinstance(v, (int, float)) or not p[regmap.F_MIN] <= v <= p[regmap.F_MAX]:
            raise ValueError("config settings.%s: %r outside %g..%g"
                             % (name, v, p[regmap.F_MIN], p[regmap.F_MAX]))
    for name in left:
        raise ValueError("config settings.%s: no such point in profile %s"
                         % (name, out["profile"]))


_OPTS = {"--profile": ("profile", str), "--unit": ("unit", int), "--port": ("port", str),
         "--baud": ("baud", int), "--wdt-ms": ("wdt_ms", int),
         "--comm-loss-s": ("comm_loss_timeout_s", float), "--model": ("model", str),
         "--reset-cause": ("reset_cause", int), "--set-rate": ("set_rate_hz", int),
         "--state-dir": ("state_dir", str), "--energy-step-wh": ("energy_step_wh", int),
         "--flash-cycles": ("flash_cycles", int),
         "--settings-locked": ("settings_locked", lambda v: bool(int(v))),
         "--settings-key": ("settings_key", lambda v: [int(w, 0) for w in v.split(",")]),
         "--start-delay-s": ("start_delay_s", float), "--start-stagger-s": ("start_stagger_s", float),
         "--rated-kw": ("rated_kw", float), "--metering": ("metering", int),
         "--link": ("link", int), "--link-tty": ("link_tty", str),
         "--adc-burst": ("adc_burst", int), "--burst-every-ms": ("burst_every_ms", int)}


def from_argv(argv):
    cfg = {}
    i = 0
    while i < len(argv):
        opt = argv[i]
        if opt not in _OPTS:
            raise ValueError("unknown option %r (known: %s)" % (opt, " ".join(sorted(_OPTS))))
        if i + 1 >= len(argv):
            raise ValueError("option %s needs a value" % opt)
        key, conv = _OPTS[opt]
        try:
            cfg[key] = conv(argv[i + 1])
        except ValueError:
            raise ValueError("option %s: bad value %r" % (opt, argv[i + 1]))
        i += 2
    return validate(cfg)


def from_file(path):
    import json
    try:
        with open(path) as f:
            cfg = json.load(f)
    except OSError:
        raise ValueError("config file %s not found" % path)
    except ValueError as e:
        raise ValueError("config file %s: not valid JSON (%s)" % (path, e))
    if not isinstance(cfg, dict):
        raise ValueError("config file %s: expected a JSON object" % path)
    return validate(cfg)
