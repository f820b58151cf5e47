"""Safety settings: never written by broadcast; refused (exception 04) while
locked by the key register or the jumper; commands always pass. On the real
MicroPython VM, exact reply bytes."""

import regbank
from mpytest import check, finish, frame
from modbus_rtu import RtuServer


def run(srv, req):
    for i in range(len(req)):
        srv.rx[i] = req[i]
    return bytes(srv.tx[:srv.handle(len(req))])


def w6(addr, v, unit=7):
    return frame(bytes([unit, 6, addr >> 8, addr & 0xFF, v >> 8, v & 0xFF]))


bank = regbank.RegBank("fgd")
srv = RtuServer(bank, 7, 115200, ("GreenEdge", "fgd", "1.0.0"))
MIN_ON = 48   # pump_min_on_s
FEEDER = 32   # feeder_cmd_pct (a command)
EX04 = lambda fc: bytes(frame(bytes([7, fc | 0x80, 4])))  # noqa: E731

# Broadcast: commands yes, safety settings (arm, limits, safe values) never.
run(srv, w6(MIN_ON, 5, unit=0))
run(srv, w6(0, 1, unit=0))
run(srv, w6(16, 1, unit=0))
run(srv, w6(FEEDER, 1234, unit=0))
check("broadcast: min on time unchanged", bank.hr[MIN_ON], 300)
check("broadcast: not armed", bank.hr[0], 0)
check("broadcast: safe value unchanged", bank.hr[16], 0)
check("broadcast: command applied", bank.hr[FEEDER], 1234)
run(srv, frame(b"\x00\x10\x00\x30\x00\x01\x02\x00\x05"))
check("broadcast FC16: min on time unchanged", bank.hr[MIN_ON], 300)
run(srv, w6(3, 1, unit=0))
check("broadcast cannot lock", bank.hr[3], 0)

# Open by default (the sim, no jumper): the host's writes at device-up pass.
check("open by default", run(srv, w6(MIN_ON, 120)), bytes(w6(MIN_ON, 120)))
# Lock by key register; settings refused with 04, commands pass.
check("lock", run(srv, w6(3, 1)), bytes(w6(3, 1)))
check("lock state reads 1", bank.hr[3], 1)
check("locked: FC06 setting -> 04", run(srv, w6(MIN_ON, 60)), EX04(6))
check("locked: FC16 setting -> 04",
      run(srv, frame(b"\x07\x10\x00\x30\x00\x02\x04\x00\x3c\x00\x3c")), EX04(16))
check("locked: arm -> 04", run(srv, w6(0, 1)), EX04(6))
check("locked: value unchanged", bank.hr[MIN_ON], 120)
check("locked: command passes", run(srv, w6(FEEDER, 2000)), bytes(w6(FEEDER, 2000)))
# Unlock: 0x5AFE then 0xC0DE; a wrong second word restarts the sequence.
run(srv, w6(3, 0x5AFE))
check("wrong second key word -> 03", run(srv, w6(3, 0x1234)), bytes(frame(b"\x07\x86\x03")))
run(srv, w6(3, 0xC0DE))
check("still locked", bank.hr[3], 1)
run(srv, w6(3, 0x5AFE))
run(srv, w6(3, 0xC0DE))
check("unlocked by the key", bank.hr[3], 0)
check("unlocked: setting written", run(srv, w6(MIN_ON, 60)), bytes(w6(MIN_ON, 60)))
check("FC16 over the lock register -> 02",
      run(srv, frame(b"\x07\x10\x00\x02\x00\x02\x04\x00\x00\x00\x01")), bytes(frame(b"\x07\x90\x02")))


class Jumper:
    v = 0  # fitted: pulled to GND

    def value(self):
        return self.v


srv.jumper = Jumper()
check("jumper fitted: locked (2)", srv.locked(), 2)
run(srv, w6(3, 0x5AFE))
run(srv, w6(3, 0xC0DE))
check("jumper fitted: the key does not open", run(srv, w6(MIN_ON, 90)), EX04(6))
srv.jumper.v = 1
check("jumper pulled: open", run(srv, w6(MIN_ON, 90)), bytes(w6(MIN_ON, 90)))
finish()
