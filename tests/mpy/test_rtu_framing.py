"""RTU framing by length, on the real MicroPython VM with a simulated clock.

Pure receiver (RtuServer.feed/poll with timestamps): frames read back to back,
split by a scheduling gap, merged with garbage, another unit's reply that holds
a frame for this unit. Whole device loop (Device.run on a simulated line and
clock): 10 s of garbage with no gap does not stop the comm-loss safe state or
the watchdog feed; two requests with no gap are both answered; a request split
by a 5 ms gap is answered.
"""

import sys

import wraptime

sys.modules["time"] = wraptime

import micropython  # noqa: E402

import fakeline  # noqa: E402
import regbank  # noqa: E402
from mpytest import check, finish, frame  # noqa: E402
from modbus_rtu import RtuServer  # noqa: E402

UNIT = 5
bank = regbank.RegBank("scr")
srv = RtuServer(bank, UNIT, 115200, ("GreenEdge", "scr", "1.0.0"))
T = [1000000]
READ = bytes(frame(b"\x05\x03\x00\x00\x00\x01"))  # arm
REPLY = bytes(frame(b"\x05\x03\x02\x00\x00"))


def feed(data, after_us=100):
    """data as one chunk read after_us after the previous; replies sent."""
    T[0] += after_us
    buf = bytearray(512)  # a read that does not fill its buffer: nothing more waiting
    buf[:len(data)] = data
    out = []
    micropython.heap_lock()
    try:
        srv.feed(buf, len(data), T[0])
        while srv.reply_n and srv.backlog():
            out.append(srv.take())
            srv.resume()
    finally:
        micropython.heap_unlock()
    for r in out:
        replies.append(bytes(srv.tx[:r]))


def silence(us=3000):
    T[0] += us
    r = srv.poll(T[0])
    if r:
        replies.append(bytes(srv.tx[:r]))
        if srv.backlog():  # as the device loop does: frame what waited behind it
            srv.resume()
            silence(us)


def errors():
    return srv.counters[1]


replies = []
feed(READ + READ)
silence()
check("two requests in one chunk: both answered", replies, [REPLY, REPLY])
replies = []
feed(READ[:3])
feed(READ[3:], after_us=5000)
silence()
check("split by a 5 ms gap: answered", replies, [REPLY])
replies = []
e0 = errors()
feed(READ[:5])
silence(6000)
feed(READ)
silence()
check("truncated, silence, request: answered", replies, [REPLY])
check("the fragment is one bus error", errors() - e0, 1)
replies = []
e0 = errors()
feed(b"\x05\x03\x11\x22\x33" + READ)
silence()
check("garbage and a request in one chunk: answered", replies, [REPLY])
check("one bus error", errors() - e0, 1)
replies = []
e0 = errors()
feed(b"\x77\xee\x01" + READ)
silence()
check("unknown-function garbage and a request in one chunk: answered", replies, [REPLY])
# Unit 6 is asked for 4 registers; its reply carries 8 bytes that are a valid
# request for this unit. Skipped by length: not answered.
other = bytes(frame(b"\x06\x03\x00\x00\x00\x04"))
reply6 = bytes(frame(b"\x06\x03\x08" + READ))
replies = []
e0 = errors()
feed(other + reply6 + READ)
silence()
check("another unit's reply skipped by length", replies, [REPLY])
check("no bus error on a multi-drop exchange", errors() - e0, 0)
replies = []
feed(other)
silence()
feed(reply6)
silence()
check("another unit's reply after a silence skipped", replies, [])

# A frame of unknown function ends at its first valid CRC; the bytes after it
# are framed from where it ended (a busy host: the fuzz test's bursts
# 0038cee394 then 05299ab4abf6cc8934 read as one chunk; the second frame was
# searched for from one byte past its start and lost).
bcast = bytes(frame(b"\x00\x38\xce"))
odd = bytes(frame(b"\x05\x29\x9a\xb4\xab"))
replies = []
feed(bcast + odd + b"\x89\x34")
silence()
check("unknown-function broadcast then request in one chunk: exception 01",
      replies, [bytes(frame(b"\x05\xa9\x01"))])
replies = []
feed(bcast + READ)
silence()
check("unknown-function broadcast then a read in one chunk: answered", replies, [REPLY])
odd2 = bytes(frame(b"\x05\x41\x01"))
replies = []
feed(odd + odd2)
silence()
check("two unknown-function requests in one chunk: both answered in order", replies,
      [bytes(frame(b"\x05\xa9\x01")), bytes(frame(b"\x05\xc1\x01"))])

# ---- the whole device loop on a simulated line and clock -----------------------------
import device  # noqa: E402


class Wdt:
    def __init__(self):
        self.feeds = []

    def feed(self):
        self.feeds.append(fakeline.now_us())

    def expired(self, now_ms):
        return False

    def fire(self):
        pass


def run_device(line):
    sys.modules["select"] = fakeline.Select(line)
    cfg = {"profile": "scr", "unit": UNIT, "baud": 115200, "comm_loss_timeout_s": 1.0,
           "model": "", "hal": "sim"}
    wdt = Wdt()
    dev = device.Device(cfg, line, wdt)
    try:
        dev.run()
    except fakeline.StopSim:
        pass
    return dev, wdt


t0 = fakeline.now_us()
ARM = bytes(frame(b"\x05\x06\x00\x00\x00\x01"))
line = fakeline.Line(t0 + 11000000)
line.send(t0 + 100000, ARM)
import random  # noqa: E402
random.seed(14)
g0 = t0 + 200000
garbage = bytearray(10000000 // fakeline.CHAR_US)
for i in range(len(garbage)):
    garbage[i] = random.getrandbits(8)
line.send(g0, garbage)
dev = None
line.probes.append([g0 + 1500000, lambda: dev_ref[0].bank.hr[0], None])
line.probes.append([g0 + 9900000, lambda: dev_ref[0].sup.comm_lost, None])
dev_ref = [None]
_Device = device.Device


class Probed(_Device):
    def __init__(self, *a):
        _Device.__init__(self, *a)
        dev_ref[0] = self


device.Device = Probed
dev, wdt = run_device(line)
check("armed by the first frame", line.out[:1], [(line.out[0][0], ARM)] if line.out else [])
check("garbage: disarmed (comm loss) 1.5 s into the stream", line.probes[0][2], 0)
check("garbage: comm lost shown 9.9 s into it", line.probes[1][2], True)
during = [t for t in wdt.feeds if g0 <= t < g0 + 10000000]
check("garbage: watchdog fed all along (>= 90 feeds in 10 s)", len(during) >= 90, True)
gaps = [during[i + 1] - during[i] for i in range(len(during) - 1)]
check("garbage: no feed gap above 200 ms", max(gaps) <= 200000, True)

t0 = fakeline.now_us()
line = fakeline.Line(t0 + 500000)
line.send(t0 + 100000, READ + READ)
split = t0 + 200000
line.send(split, READ[:4])
line.send(split + 4 * fakeline.CHAR_US + 5000, READ[4:])
dev, wdt = run_device(line)
check("device: two requests with no gap both answered, then the split one",
      [b for _, b in line.out], [REPLY, REPLY, REPLY])
last = split + 4 * fakeline.CHAR_US + 5000 + 3 * fakeline.CHAR_US
check("device: the split request answered within 5 ms of its end",
      0 < line.out[2][0] - last < 5000, True)
finish()
