"""Board entry point: kept tiny so nothing is compiled on the device heap."""
import gc
import sys

import app

dev = app.boot(sys.argv[1:])
# Init-only code gives its RAM back: the boot code and the register map (the bank
# holds everything the running device needs; codec stays).
for _m in [m for m in sys.modules
           if m in ("app", "regmap", "regsetup", "profiles") or m.startswith("profiles.")]:
    del sys.modules[_m]
del app
gc.collect()
if dev.cfg["link"] or dev.cfg["link_tty"] or dev.cfg["link_uart"]:
    import plantlink
    plantlink.start(dev, dev.hal)
    del plantlink
    gc.collect()
if dev.meter_plan is not None:
    import meterboot
    meterboot.start(dev)
    del meterboot
    del sys.modules["meterboot"]
    gc.collect()

dev.run()
