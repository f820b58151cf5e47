"""Relays, comm loss and uptime over simulated weeks with ticks that wrap at
2^30 ms (a 32-bit board's ticks_ms), on the real MicroPython VM.

A relay that has run 7, 13 or 20 days stops at once when told to (min_on 0)
and on comm loss; a standby pump off for 6.5, 9 or 12 days starts at once.
The simulated clock starts an hour before a wrap, so every run crosses it.
"""

import sys

import wraptime

sys.modules["time"] = wraptime

import regbank  # noqa: E402
from mpytest import check, finish  # noqa: E402
from outputs import Outputs  # noqa: E402
from supervisor import Supervisor  # noqa: E402

DAY_MS = 86400000
STEP_MS = 60000  # one update a minute: weeks in a few seconds of VM time
T0 = (1 << 30) - 3600000


class Link:
    """The RTU server as the supervisor sees it: a frame counter (the host's
    heartbeat is written into the bank, holding 4)."""
    frames_for_me = 0
    write_hook = None

    def show_lock(self):
        pass


def build(settings):
    wraptime.now_ms[0] = T0
    bank = regbank.RegBank("fgd", settings)
    driven = [0] * 7

    def driver(i, v):
        driven[i] = v

    out = Outputs(bank, "fgd", driver, now_ms=wraptime.ticks_ms())
    link = Link()
    sup = Supervisor(bank, link, out, None, 0, wraptime.ticks_ms())
    return bank, out, sup, link, driven


def host(sup, link):
    """A poll and a heartbeat from a healthy host loop."""
    link.frames_for_me += 1
    sup.bank.hr[4] = (sup.bank.hr[4] + 1) & 0xFFFF  # host_heartbeat


def run_until(sup, link, t_abs_ms, frames=True):
    """Tick every STEP_MS up to absolute time t_abs_ms, with the host alive."""
    while wraptime.now_ms[0] + STEP_MS <= t_abs_ms:
        wraptime.advance(STEP_MS)
        if frames:
            host(sup, link)
        sup.tick(wraptime.ticks_ms())


def tick_once(sup, link, ms=50):
    wraptime.advance(ms)
    host(sup, link)
    sup.tick(wraptime.ticks_ms())


safe_off = {"pump%d_run_safe" % i: 0 for i in range(1, 6)}

# Pumps 1-3 run from the start (min on 0) and are stopped after 7, 13, 20 days;
# pumps 4 and 5 stand by and are started after 6.5 and 12 days. Before that,
# pump 4 makes its hour's worth of starts (4) so a stale start history shows.
s = dict(safe_off)
s.update({"pump_min_on_s": 0, "pump_min_off_s": 300, "max_starts_per_h": 4})
bank, out, sup, link, driven = build(s)
bank.hr[0] = 1  # armed
co = bank.co
co[0] = co[1] = co[2] = 1
tick_once(sup, link)
check("pumps 1-3 running", driven[:3], [1, 1, 1])
for k in range(4):
    co[3] = 1
    run_until(sup, link, wraptime.now_ms[0] + 301000)
    co[3] = 0
    run_until(sup, link, wraptime.now_ms[0] + 301000)
check("pump 4 made 4 starts in its first hour", driven[3], 0)
plan = ((7, 0, 0), (6.5, 3, 1), (12, 4, 1), (13, 1, 0), (20, 2, 0))
for days, pump, want in sorted(plan):
    run_until(sup, link, T0 + int(days * DAY_MS))
    co[pump] = want
    tick_once(sup, link)
    check("pump %d %s after %g days at once" % (pump + 1, "starts" if want else "stops", days),
          driven[pump], want)
    check("no relay interlock after %g days" % days, bank.ir[4] & 4, 0)
up = (bank.ir[6] << 16) | bank.ir[7]
want_up = (wraptime.now_ms[0] - T0) // 1000
check("uptime_s after 20 days", abs(up - want_up) <= 1, True)

# Comm loss after 7, 13 and 20 days running: safe state (pump off) within the
# timeout (10 s), though the pump's minimum run time is long over.
for days in (7, 13, 20):
    s = dict(safe_off)
    s.update({"pump_min_on_s": 600})
    bank, out, sup, link, driven = build(s)
    bank.hr[0] = 1
    bank.co[0] = 1
    tick_once(sup, link)
    run_until(sup, link, T0 + days * DAY_MS)
    check("pump running before comm loss (%d days)" % days, (driven[0], bank.hr[0]), (1, 1))
    t_lost = wraptime.now_ms[0]
    while wraptime.now_ms[0] - t_lost < 11000:
        wraptime.advance(50)
        sup.tick(wraptime.ticks_ms())
    check("comm loss after %d days: disarmed" % days, bank.hr[0], 0)
    check("comm loss after %d days: pump stopped" % days, driven[0], 0)

finish()
