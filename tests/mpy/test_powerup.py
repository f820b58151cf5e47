"""Power-up on the real MicroPython VM, injected clock: nothing starts before
the host arms, unless the board file says so per output; a start delay per
unit and a stagger per output restart a pump train one pump after the other."""

import regbank
from mpytest import check, finish
from outputs import Outputs


def build(profile, settings=None, delay_ms=0, stagger_ms=0):
    bank = regbank.RegBank(profile, settings)
    out = Outputs(bank, profile, None, 0, delay_ms, stagger_ms)
    return bank, out


for profile, relays in (("motor", [1]), ("compressor", [0]), ("fgd", [0, 1, 2, 3, 4])):
    bank, out = build(profile)
    for t in range(0, 60001, 1000):
        out.update(t)
    check("%s: run outputs off at power-up, 60 s disarmed" % profile,
          [out.actual[i] for i in relays], [0] * len(relays))

# A board file that keeps pump 1 running through a power cut (found running).
bank, out = build("fgd", {"pump1_run_safe": 1})
out.update(100)
check("board file pump1_run_safe 1: pump 1 runs at power-up, the others not",
      [out.actual[i] for i in range(5)], [1, 0, 0, 0, 0])

# Start delay 2 s and stagger 5 s: armed at once with all five pumps commanded.
bank, out = build("fgd", {"pump_min_off_s": 0}, 2000, 5000)
bank.hr[0] = 1
for i in range(5):
    bank.co[i] = 1
starts = [None] * 5
for t in range(0, 30001, 100):
    out.update(t)
    for i in range(5):
        if out.actual[i] and starts[i] is None:
            starts[i] = t
check("pumps start 2 s + 5 s x k after boot", starts, [2000, 7000, 12000, 17000, 22000])
finish()
