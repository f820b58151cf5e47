"""Metering on the real MicroPython VM with golden synthetic signals.

Synthesis (floats, outside the kernel) -> 12-bit quantised sample sets ->
Meter.feed under heap_lock (must not allocate) -> Meter.poll -> compare with the
analytic values. Prints one line per case and "ALL OK".
"""

import math
import random
import sys
from array import array

import micropython

from metering import Meter

fails = 0
random.seed(7)


def check(name, got, want, tol, rel=True):
    global fails
    err = abs(got - want) / (abs(want) if rel and want else 1.0)
    if err > tol:
        fails += 1
        print("FAIL %s got %.6f want %.6f err %.6f > %g" % (name, got, want, err, tol))
    else:
        print("ok %s %.6f" % (name, got))


def synth(buf, k0, nsets, fs, f, va, ia, phi_deg, harm=(), dc=(0, 0), noise=0, vphase=(1, 1, 1)):
    """Fill nsets sets starting at set index k0. Phases 120 deg apart."""
    w = 2 * math.pi * f / fs
    lag = math.radians(phi_deg)
    for k in range(nsets):
        t = (k0 + k) * w
        for p in range(3):
            a = t - p * 2 * math.pi / 3
            v = va * vphase[p] * math.sin(a) + dc[0]
            i = ia * math.sin(a - lag) + dc[1]
            for h, frac in harm:
                i += ia * frac * math.sin(h * (a - lag))
            if noise:
                v += (random.random() - 0.5) * noise
                i += (random.random() - 0.5) * noise
            buf[6 * k + p] = min(4095, max(0, int(round(v + 2048))))
            buf[6 * k + 3 + p] = min(4095, max(0, int(round(i + 2048))))


def run(f=50.0, fs=2400, va=1500.0, ia=1000.0, phi=0.0, seconds=1.0, nominal=50, **kw):
    m = Meter(fs, nominal_hz=nominal)
    buf = array("H", [0] * (6 * 64))
    blocks = []
    k = 0
    total = int(seconds * fs)
    while k < total:
        synth(buf, k, 64, fs, f, va, ia, phi, **kw)
        micropython.heap_lock()
        try:
            m.feed(buf, 64)
        finally:
            micropython.heap_unlock()
        r = m.poll()
        if r:
            blocks.append(dict(r))  # poll() reuses its dict
        k += 64
    return m, blocks


def last(blocks):
    return blocks[-1]


for name, kw, pf in (("pf1", dict(phi=0.0), 1.0), ("pf0.5lag", dict(phi=60.0), 0.5),
                     ("pf0", dict(phi=90.0), 0.0), ("pf-1", dict(phi=180.0), -1.0)):
    m, b = run(**kw)
    r = last(b)
    va, ia = 1500.0, 1000.0
    check(name + " vrms", r["v1"], va / math.sqrt(2), 0.002)
    check(name + " irms", r["i2"], ia / math.sqrt(2), 0.002)
    check(name + " p", r["p"], 3 * va * ia / 2 * pf, 0.005 * 3 * va * ia / 2, rel=False)
    check(name + " pf", r["pf"], pf, 0.005, rel=False)
    check(name + " freq", r["freq"], 50.0, 0.01, rel=False)

m, b = run(f=60.0, fs=2000, nominal=60, phi=25.0)
check("60Hz freq", last(b)["freq"], 60.0, 0.01, rel=False)
check("60Hz pf", last(b)["pf"], math.cos(math.radians(25)), 0.005, rel=False)

for f in (49.0, 49.5, 50.5, 51.0):
    m, b = run(f=f)
    check("drift %.1f freq" % f, last(b)["freq"], f, 0.01, rel=False)
    check("drift %.1f vrms" % f, last(b)["v3"], 1500 / math.sqrt(2), 0.002)

m, b = run(dc=(100, -50), noise=6.0)
r = last(b)
check("dc+noise vrms", r["v1"], 1500 / math.sqrt(2), 0.002)
check("dc+noise p", r["p"], 3 * 1500 * 1000 / 2, 0.005)
check("dc+noise pf", r["pf"], 1.0, 0.005, rel=False)

m, b = run(harm=((3, 0.10), (5, 0.05)))
check("thd", last(b)["thd_i"], math.sqrt(0.01 + 0.0025), 0.01, rel=False)
check("thd irms", last(b)["i1"], 1000 / math.sqrt(2) * math.sqrt(1 + 0.01 + 0.0025), 0.002)

m, b = run(va=0.0, ia=0.0, seconds=1.0)
check("no AC reported", 1.0 if b and not last(b)["ac"] else 0.0, 1.0, 0.0, rel=False)
check("no AC power", last(b)["p"], 0.0, 1.0, rel=False)

m, b = run(vphase=(1, 0, 1))
check("phase loss v2", last(b)["v2"], 0.0, 1.0, rel=False)
check("phase loss v1", last(b)["v1"], 1500 / math.sqrt(2), 0.002)

# Energy: integer Wh with the remainder carried. cal makes 1 count^2 = 1 W:
# 3 * 1500 * 1000 / 2 W for 2 s = 1250 Wh.
m = Meter(2400, cal=[1.0] * 6)
buf = array("H", [0] * (6 * 64))
k = 0
nblocks = 0
while k < 2 * 2400 + 64 * 6:
    synth(buf, k, 64, 2400, 50.0, 1500.0, 1000.0, 0.0)
    m.feed(buf, 64)
    if m.poll():
        nblocks += 1
    k += 64
# Each block is 5 whole cycles = 0.1 s of 2.25 MW.
check("energy Wh int", 1.0 if isinstance(m.energy_wh, int) else 0.0, 1.0, 0.0, rel=False)
check("energy Wh", m.energy_wh + m.energy_rem_j / 3600, 2250000 * nblocks * 0.1 / 3600, 0.001)
check("remainder bounded", 1.0 if 0 <= m.energy_rem_j < 3600 else 0.0, 1.0, 0.0, rel=False)

# Bursts (ESP32/STM32 boards): one-cycle blocks, each burst starting anywhere
# in the cycle after a gap; energy counts each burst's power over the time
# between bursts (dt_s), so 10 bursts 0.5 s apart = 5 s of 2.25 MW.
m = Meter(2400, cycles=1, cal=[1.0] * 6, noac_cycles=1.42)
n = m.burst_sets()
bbuf = array("H", [0] * (6 * n))
got = 0
for b in range(10):
    m.restart()
    synth(bbuf, random.randrange(48) + 1000 * b, n, 2400, 50.0, 1500.0, 1000.0, 60.0)
    m.feed(bbuf, n)
    r = m.poll(0.5)
    if r:
        got += 1
        check("burst %d vrms" % b, r["v2"], 1500 / math.sqrt(2), 0.003)
        check("burst %d pf" % b, r["pf"], 0.5, 0.005, rel=False)
        check("burst %d freq" % b, r["freq"], 50.0, 0.02, rel=False)
check("every burst ends in a block", got, 10, 0, rel=False)
check("burst energy", m.energy_wh + m.energy_rem_j / 3600, 1125000 * 5.0 / 3600, 0.002)
for f in (45.5, 54.5):  # the burst holds a block at the edges of the band
    m = Meter(2400, cycles=1, noac_cycles=1.42)
    m.restart()
    synth(bbuf, 7, n, 2400, f, 1500.0, 1000.0, 0.0)
    m.feed(bbuf, n)
    r = m.poll(0.5)
    check("burst at %.1f Hz is a block" % f, 1.0 if r and r["ac"] else 0.0, 1.0, 0.0, rel=False)
m = Meter(2400, cycles=1, noac_cycles=1.42)
synth(bbuf, 0, n, 2400, 50.0, 0.0, 0.0, 0.0)
m.feed(bbuf, n)
r = m.poll(0.5)
check("burst without AC says so", 1.0 if r and not r["ac"] else 0.0, 1.0, 0.0, rel=False)


# A stalled main loop: poll() only every 100 ms (240 sets at 2400/s), so a
# finished block waits while the next stays open past its 5 cycles. Frequency
# and THD must come from the cycles the block really holds.
for f, nominal in ((60.0, 60), (55.0, 50), (50.0, 50)):
    m = Meter(2400, nominal_hz=nominal)
    buf = array("H", [0] * (6 * 64))
    got = []
    k = 0
    fed = 0
    while k < 2400 * 3:
        synth(buf, k, 64, 2400, f, 1500.0, 1000.0, 0.0, harm=((3, 0.05), (5, 0.03)))
        m.feed(buf, 64)
        k += 64
        fed += 64
        if fed >= 240:
            fed = 0
            r = m.poll()
            if r:
                got.append((r["freq"], r["thd_i"]))
    worst_f = max(abs(g[0] - f) for g in got[2:])
    worst_t = max(abs(g[1] - math.sqrt(0.0025 + 0.0009)) for g in got[2:])
    check("late poll %g Hz: worst freq error" % f, worst_f, 0.0, 0.02, rel=False)
    check("late poll %g Hz: worst THD error" % f, worst_t, 0.0, 0.01, rel=False)

if fails:
    print("FAILED", fails)
    sys.exit(1)
print("ALL OK")
