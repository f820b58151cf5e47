"""Supervisor and outputs on the real MicroPython VM, with an injected clock."""

import sys

import regbank
from modbus_rtu import RtuServer, crc16
from outputs import Outputs
from supervisor import Supervisor

fails = 0


def check(name, got, want):
    global fails
    if got != want:
        fails += 1
        print("FAIL", name, got, want)
    else:
        print("ok", name)


class Wdt:
    feeds = 0

    def feed(self):
        self.feeds += 1


def frame(b):
    b = bytearray(b)
    c = crc16(b, len(b))
    b.append(c & 0xFF)
    b.append(c >> 8)
    return b


def send(srv, req):
    for i in range(len(req)):
        srv.rx[i] = req[i]
    return bytes(srv.tx[:srv.handle(len(req))])


bank = regbank.RegBank("fgd")
srv = RtuServer(bank, 2, 115200, ("GreenEdge", "fgd", "1.0.0"))
driven = {}


def driver(i, v):
    driven[i] = v


out = Outputs(bank, "fgd", driver)
wdt = Wdt()
sup = Supervisor(bank, srv, out, wdt, reset_cause=1, now_ms=0)
a = sup.register()
b = sup.register()

# Watchdog: fed only once every task has reported; a task waiting on I/O counts.
sup.report(a)
sup.tick(50)
check("no feed with one task silent", wdt.feeds, 0)
sup.report(b)
sup.tick(100)
check("feed when all reported", wdt.feeds, 1)
sup.tick(150)
check("reports are cleared after a feed", wdt.feeds, 1)
sup.waiting |= a
sup.report(b)
sup.tick(200)
check("waiting task counts as alive", wdt.feeds, 2)
check("watchdog reset shown in status", bank.ir[3] & 0x0010, 0x0010)
check("reset cause", bank.ir[5], 1)

# Boot: disarmed, pumps at their safe value 1 (run), feeder 0, blower 100 %.
check("boot safe pumps", [driven[i] for i in range(5)], [1, 1, 1, 1, 1])
check("boot safe feeder/blower", (driven[5], driven[6]), (0, 10000))
# Arm through the protocol: pump commands (coils all 0) and feeder command follow.
send(srv, frame(b"\x02\x06\x00\x20\x0f\xa0"))  # feeder 40.00 %
send(srv, frame(b"\x02\x06\x00\x00\x00\x01"))  # arm
check("armed pumps follow coils", [driven[i] for i in range(5)], [0, 0, 0, 0, 0])
check("armed feeder follows", driven[5], 4000)
check("feedback register", bank.get("feeder_pos_pct") > 39.99, True)
# Comm loss: default timeout 10.0 s from the last frame, noticed at the tick at 250 ms.
sup.tick(250)
sup.tick(10200)
check("no trip before timeout", bank.hr[0], 1)
sup.tick(10300)
check("trip after timeout", bank.hr[0], 0)
check("safe after trip", (driven[0], driven[5]), (1, 0))
check("comm lost status", bank.ir[3] & 0x0006, 0x0006)

# A write hook that fails is a device failure (exception 04), counted as exception.
def broken(table, addr, qty):
    raise OSError("driver fault")


srv.write_hook = broken
check("exception 04", send(srv, frame(b"\x02\x06\x00\x21\x00\x01")), bytes(frame(b"\x02\x86\x04")))

if fails:
    print("FAILED", fails)
    sys.exit(1)
print("ALL OK")
