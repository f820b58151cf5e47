"""Supervisor and outputs on the real MicroPython VM, with an injected clock."""


import regbank
from mpytest import check, finish, frame
from modbus_rtu import RtuServer
from outputs import Outputs
from supervisor import Supervisor


class Wdt:
    feeds = 0

    def feed(self):
        self.feeds += 1


def send(srv, req):
    for i in range(len(req)):
        srv.rx[i] = req[i]
    return bytes(srv.tx[:srv.handle(len(req))])


bank = regbank.RegBank("fgd")
srv = RtuServer(bank, 2, 115200, ("GreenEdge", "fgd", "1.0.0"))
driven = {}


def driver(i, v):
    driven[i] = v


def beat():
    """The host heartbeat (holding 4, FC06), a new value each time."""
    v = (bank.hr[4] + 1) & 0xFFFF
    send(srv, frame(bytes([2, 6, 0, 4, v >> 8, v & 0xFF])))


out = Outputs(bank, "fgd", driver, now_ms=0)
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

# Boot: disarmed, pumps at their safe value 0 (off: nothing starts at power-up),
# feeder 0, blower 100 %.
check("boot safe pumps", [driven[i] for i in range(5)], [0, 0, 0, 0, 0])
check("boot safe feeder/blower", (driven[5], driven[6]), (0, 10000))
# Arm through the protocol with all pump coils on and the feeder at 40 %.
send(srv, frame(b"\x02\x0f\x00\x00\x00\x05\x01\x1f"))
send(srv, frame(b"\x02\x06\x00\x20\x0f\xa0"))  # feeder 40.00 %
send(srv, frame(b"\x02\x06\x00\x00\x00\x01"))  # arm
sup.tick(250)
check("armed pumps follow coils", [driven[i] for i in range(5)], [1, 1, 1, 1, 1])
# Feeder ramps at feeder_rate_pct_s (default 1 %/s): 20 % after 20 s, 40 % after 40 s.
for t in range(5250, 20251, 5000):
    beat()  # a healthy host loop keeps the device armed
    sup.tick(t)
check("feeder ramping (1 %/s from the arm tick)", abs(driven[5] - 2000) <= 10, True)
for t in range(25250, 45251, 5000):
    beat()
    sup.tick(t)
check("feeder at command", driven[5], 4000)
check("feedback register", bank.get("feeder_pos_pct") > 39.99, True)
# Pump 1 off: held on until its minimum run time (300 s from its start at the
# arm tick, 250 ms), flagged meanwhile.
send(srv, frame(b"\x02\x05\x00\x00\x00\x00"))
sup.tick(45300)
check("min on time holds the pump", driven[0], 1)
check("relay interlock bit", bank.ir[4] & 4, 4)
check("interlock in status", bank.ir[3] & 0x0008, 0x0008)
for t in range(50000, 300251, 5000):
    beat()
    sup.tick(t)
check("still held 250 ms before its minimum run time", driven[0], 1)
for t in (300250, 300300):
    beat()
    sup.tick(t)
check("released after min on time", driven[0], 0)
check("interlock clear", bank.ir[4], 0)
# Comm loss: default timeout 10.0 s from the last heartbeat, noticed at the tick after it.
sup.tick(300350)
sup.tick(310250)
check("no trip before timeout", bank.hr[0], 1)
sup.tick(310400)
check("trip after timeout", bank.hr[0], 0)
check("safe after trip: feeder ramps down", driven[5] < 4000, True)
check("comm lost status", bank.ir[3] & 0x0006, 0x0006)

# A write hook that fails is a device failure (exception 04), counted as exception.
def broken(table, addr, qty):
    raise OSError("driver fault")


srv.write_hook = broken
check("exception 04", send(srv, frame(b"\x02\x06\x00\x21\x00\x01")), bytes(frame(b"\x02\x86\x04")))

finish()
