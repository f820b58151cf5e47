"""A compressor device that loses its discharge pressure unloads, on the real
MicroPython VM with an injected clock: a wire-broken or shorted transmitter
(NE43 bad) or a stale input unloads the machine at once whatever the last good
reading was (before, only a last reading within 0.2 bar of the maximum did);
it loads again as soon as the reading is good. Interlock bit 5 shows it; the
maximum-pressure latch (bit 3) keeps its own state."""

import regbank
from analog import AnalogInput
from mpytest import check, finish
from outputs import Outputs

IL_PRESSURE, IL_P_LOST = 8, 32


def ma(bar):
    return 4.0 + 16.0 * bar / 16.0


bank = regbank.RegBank("compressor")
p_in = AnalogInput(bank, "discharge_pressure_bar", 0.0, 16.0)
check("pressure never measured at boot: bad", bank.get_quality(p_in.slot), 2)
out = Outputs(bank, "compressor", now_ms=0)
check("boot: pressure unknown, bit 5", out.interlocks & IL_P_LOST, IL_P_LOST)
bank.hr[0] = 1
bank.co[0] = 1
bank.co[1] = 1
bank.set("speed_ref_pct", 80.0)
t = 0


def step(ma_in=None, n=1):
    global t
    for _ in range(n):
        t += 100
        if ma_in is not None:
            p_in.update_ma(ma_in, 0.1)
        out.update(t)


step(ma(7.0), 10)
check("7.0 bar: loaded", (out.actual[1], out.interlocks), (1, 0))
for name, loop_ma in (("wire break", 1.0), ("short", 22.5)):
    step(loop_ma)
    check("%s at 7.0 bar (1.5 bar under the maximum): unloaded at once" % name,
          (out.actual[1], out.interlocks & IL_P_LOST), (0, IL_P_LOST))
    check("%s: the motor runs on, the VSD holds its speed" % name,
          (out.actual[0], out.actual[2] > 0), (1, True))
    check("%s: not the maximum-pressure latch" % name,
          (out.interlocks & IL_PRESSURE, bank.get("high_pressure_unload")), (0, 0))
    step(loop_ma, 50)
    check("%s for 5 s: still unloaded" % name, out.actual[1], 0)
    step(ma(7.0))
    check("reading back after the %s: loaded again" % name, (out.actual[1], out.interlocks), (1, 0))

# Stale: the input scan stops (no sample for 2 s).
step(None, 20)
check("no sample for 2.0 s: loaded", out.actual[1], 1)
step(None, 1)
check("no sample for 2.1 s: unloaded, bit 5", (out.actual[1], out.interlocks & IL_P_LOST),
      (0, IL_P_LOST))
step(ma(7.0))
check("a sample again: loaded", out.actual[1], 1)

# Over the maximum (8.5 bar): latched, and a bad reading meanwhile keeps it latched.
step(ma(8.6))
check("8.6 bar: unloaded by the latch", (out.actual[1], out.interlocks), (0, IL_PRESSURE))
step(1.0)
check("lost while latched: both bits", out.interlocks & (IL_PRESSURE | IL_P_LOST),
      IL_PRESSURE | IL_P_LOST)
step(ma(8.4))
check("back at 8.4 bar: still latched (released 0.2 bar under)", out.actual[1], 0)
step(ma(8.2))
check("8.2 bar: released, loaded", (out.actual[1], out.interlocks), (1, 0))

# Disarmed with a safe state that loads (load_safe 1): unloaded without a reading too.
bank.hr[0] = 0
bank.set("load_safe", 1)
bank.set("run_safe", 1)
step(ma(7.0), 5)
check("disarmed, load_safe 1, 7.0 bar: loaded", out.actual[1], 1)
step(1.0)
check("disarmed, load_safe 1, reading lost: unloaded", out.actual[1], 0)
finish()
