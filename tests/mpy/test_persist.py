"""Energy counter on flash (persist.EnergyStore), on the real MicroPython VM
with a board's wrapping ticks (wraptime) and real files in /tmp.

- Budget: 10 years at 10,000 cycles -> at most one save per 31,536 s; 30 days
  at 160 kW (a step of 1 kWh every 22.5 s) make at most 83 saves.
- A power cut at any byte of a save leaves the previous value readable (at
  most one save lost); a valid slot is never ignored (the newest corrupt:
  the other one; only an older firmware's .tmp left by a cut: that one).
"""

import os
import sys

import wraptime

sys.modules["time"] = wraptime

from mpytest import check, finish  # noqa: E402
from persist import EnergyStore, min_interval_s  # noqa: E402

PATH = "/tmp/ge_energy_%d.dat" % os.getpid() if hasattr(os, "getpid") else "/tmp/ge_energy_t.dat"


def clean():
    for name in (PATH, PATH + ".tmp", PATH + ".0", PATH + ".1"):
        try:
            os.remove(name)
        except OSError:
            pass


def slot(k):
    with open("%s.%d" % (PATH, k)) as f:
        return f.read()


clean()
check("budget: 10 years at 10k cycles", min_interval_s(10000, 10), 31536.0)
check("fresh board starts at 0", EnergyStore(PATH).saved, 0)

# 30 days at 160 kW, metered every second, ticks wrapping at 2^30 ms.
wraptime.now_ms[0] = (1 << 30) - 1000
st = EnergyStore(PATH, step_wh=1000, now_ms=wraptime.ticks_ms())
wh = 0.0
days = 30
for s in range(days * 86400):
    wraptime.advance(1000)
    wh += 160000 / 3600.0
    st.maybe_save(int(wh), wraptime.ticks_ms())
per_day = st.writes / days
check("30 days at 160 kW: at most 83 saves (%d, %.2f a day)" % (st.writes, per_day),
      st.writes <= 83, True)
check("saves kept going across tick wraps", st.writes >= 80, True)
back = EnergyStore(PATH).saved
check("read back within one interval (31,536 s at 160 kW = 1,401,600 Wh)",
      0 <= int(wh) - back <= 1401600 + 1000, True)

# A cut at every byte of a save: the previous value survives.
clean()
st = EnergyStore(PATH, step_wh=10, flash_cycles=1000000000, life_years=1)
t = 0
for v in (100, 200, 300):
    t += 1000
    st.maybe_save(v, t)
check("three saves", st.writes, 3)
newest = st.slot
line_old = slot(newest)
target = 1 - newest  # the next save rewrites this one
full = "3 400 "
bad = 0
for k in range(len(full) + 6):
    with open("%s.%d" % (PATH, target), "w") as f:
        f.write((full + "12345\n")[:k])
    got = EnergyStore(PATH).saved
    if got != 300:
        bad += 1
check("a cut at any byte of the next save: 300 Wh read back", bad, 0)
with open("%s.%d" % (PATH, newest), "w") as f:
    f.write(line_old[:-3] + "xx\n")  # the newest slot corrupt (CRC)
with open("%s.%d" % (PATH, target), "w") as f:
    f.write("")
check("both slots bad: 0, no crash", EnergyStore(PATH).saved, 0)
clean()
st = EnergyStore(PATH, step_wh=10, flash_cycles=1000000000, life_years=1)
st.maybe_save(100, 1000)
st.maybe_save(200, 2000)
with open("%s.%d" % (PATH, st.slot), "w") as f:
    f.write("garbage")
check("newest slot corrupt: the other slot's 100 Wh", EnergyStore(PATH).saved, 100)

# Older firmware's file: "<wh> <crc>", and the .tmp a cut between unlink and
# rename left behind (that firmware read back 0).
clean()
with open(PATH + ".tmp", "w") as f:
    f.write("1234 %d\n" % 64186)
c = 0
for ch in "1234":
    c = (c * 31 + ord(ch)) & 0xFFFF
with open(PATH + ".tmp", "w") as f:
    f.write("1234 %d\n" % c)
check("older firmware's .tmp after a cut: read", EnergyStore(PATH).saved, 1234)
st = EnergyStore(PATH, step_wh=10, flash_cycles=1000000000, life_years=1)
st.maybe_save(1300, 1000)
check("then saved in a slot", EnergyStore(PATH).saved, 1300)
clean()
finish()
