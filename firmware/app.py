"""Boot sequence (called by main.py): config -> HAL -> device -> main loop.

On a board, config comes from /config.json; on the unix port from the command
line (`micropython main.py --profile motor --unit 3 --port /dev/pts/4`).
A bad config prints one line naming the key and exits with status 2.
"""

import sys


def _board_hal(name):
    if name == "rp2":
        from hal import rp2 as hal
    elif name == "esp32":
        from hal import esp32 as hal
    elif name == "stm32":
        from hal import stm32 as hal
    else:
        from hal import sim as hal
    return hal


def boot(argv):
    """Config -> HAL -> Device; returns the device, ready for dev.run().

    The config parser is dropped from memory before the device is built: on a
    64 KB heap every kilobyte of init-only code counts.
    """
    import gc
    import fwconfig
    try:
        if sys.platform == "linux":
            cfg = fwconfig.from_argv(argv)
        else:
            cfg = fwconfig.from_file("/config.json")
        hal = _board_hal(cfg["hal"])
        if cfg["hal"] == "sim":
            uart = hal.Uart(cfg["port"], cfg["baud"])
        else:
            u = cfg["uart"]
            uart = hal.Uart(u["id"], u["tx"], u["rx"], u["de"], cfg["baud"],
                            {"E": 0, "O": 1, "N": None}[cfg["parity"]])
    except ValueError as e:
        print("greenedge device: %s" % e)
        sys.exit(2)
    sys.modules.pop("fwconfig", None)
    sys.modules.pop("adcmap", None)  # checked the wiring; a board's ADC reloads it
    del fwconfig
    gc.collect()
    from device import Device
    gc.collect()
    dev = Device(cfg, uart, hal.Wdt(cfg["wdt_ms"]), hal.reset_cause(cfg["reset_cause"]))
    dev.hal = hal  # the plant link's UART (sim-input mode) is built by the same HAL
    if cfg["settings_lock_pin"] is not None:
        from machine import Pin
        dev.rtu.jumper = Pin(cfg["settings_lock_pin"], Pin.IN, Pin.PULL_UP)
        dev.rtu.show_lock()
    if cfg["ain"] or cfg["din"] or cfg["outputs"]:
        import boardio  # names resolve now, while the register map is loaded
        boardio.start(dev, hal, cfg)
    gc.collect()
    return dev

