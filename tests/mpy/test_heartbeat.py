"""The host heartbeat on the real MicroPython VM, exact frames, injected clock.

Armed, the device needs holding 4 (host_heartbeat) to change within
comm_loss_timeout_s; polls and other writes do not count (before, any valid
frame kept it armed: a dead loop on a live host held its last commands for
ever). The heartbeat is written while the settings are locked, never by
broadcast. The unlock key is a board setting."""

import regbank
from modbus_rtu import RtuServer
from mpytest import check, finish, frame
from outputs import Outputs
from supervisor import Supervisor

U = 3


def run(srv, req):
    for i in range(len(req)):
        srv.rx[i] = req[i]
    return bytes(srv.tx[:srv.handle(len(req))])


def w6(addr, v, unit=U):
    return frame(bytes([unit, 6, addr >> 8, addr & 0xFF, v >> 8, v & 0xFF]))


POLL = frame(bytes([U, 3, 0, 32, 0, 2]))  # speed_ref_pct, damper_cmd_pct


class Rig:
    def __init__(self):
        self.bank = regbank.RegBank("motor")
        self.srv = RtuServer(self.bank, U, 115200, ("GreenEdge", "motor", "1.0.0"))
        self.out = Outputs(self.bank, "motor", None, now_ms=0)
        self.sup = Supervisor(self.bank, self.srv, self.out, None, 0, 0)
        self.t = 0
        self.beat = 0
        run(self.srv, w6(1, 10))  # comm_loss_timeout_s 1.0 s

    def arm(self):
        return run(self.srv, w6(0, 1))

    def go(self, ms, poll_ms=100, beat_ms=None, same=False, beat_unit=U):
        """Tick every 50 ms for ms; poll every poll_ms (None: silence), write
        the heartbeat every beat_ms (same: always the same value)."""
        end = self.t + ms
        while self.t < end:
            self.t += 50
            if poll_ms and self.t % poll_ms == 0:
                run(self.srv, POLL)
            if beat_ms and self.t % beat_ms == 0:
                if not same:
                    self.beat = (self.beat + 1) & 0xFFFF
                run(self.srv, w6(4, self.beat, unit=beat_unit))
            self.sup.tick(self.t)

    def armed(self):
        return self.bank.hr[0]


r = Rig()
check("arm", r.arm(), bytes(w6(0, 1)))
r.go(1000)
check("polled, no heartbeat: armed through the timeout (1.0 s)", r.armed(), 1)
r.go(100)
check("polled, no heartbeat: comm loss 1.05 s after arm", (r.armed(), r.sup.comm_lost), (0, True))
check("trip counted", r.bank.ir[8], 1)
check("safe state in the status word", r.bank.ir[3] & 0x0006, 0x0006)

r.arm()
r.go(30000, beat_ms=300)
check("heartbeat every 0.3 s: armed for 30 s", (r.armed(), r.bank.ir[8]), (1, 1))
check("arming cleared comm lost", r.sup.comm_lost, False)
r.go(3000, beat_ms=300, same=True)
check("the same value rewritten: comm loss", (r.armed(), r.bank.ir[8]), (0, 2))

r.arm()
r.go(2000, beat_ms=300)
r.go(1100, poll_ms=None)
check("silence: comm loss too", (r.armed(), r.bank.ir[8]), (0, 3))

# Wrap: 65535 -> 0 is a change like any other.
r.arm()
r.beat = 65533
r.go(3000, beat_ms=300)
check("heartbeat through 65535 -> 0: armed", (r.armed(), r.beat < 20), (1, True))

# A broadcast heartbeat is dropped: it keeps nothing armed.
r.go(3000, beat_ms=300, beat_unit=0)
check("broadcast heartbeat: dropped, comm loss", (r.armed(), r.bank.ir[8]), (0, 4))

# Locked settings: the heartbeat passes (FC06 and FC16), arm does not.
r = Rig()
r.arm()
check("lock", run(r.srv, w6(3, 1)), bytes(w6(3, 1)))
check("locked: heartbeat FC06 echoed", run(r.srv, w6(4, 77)), bytes(w6(4, 77)))
fc16 = frame(bytes([U, 16, 0, 4, 0, 1, 2, 0, 78]))
check("locked: heartbeat FC16 confirmed", run(r.srv, fc16), bytes(frame(bytes([U, 16, 0, 4, 0, 1]))))
check("locked: heartbeat stored", r.bank.hr[4], 78)
check("locked: timeout setting refused (04)", run(r.srv, w6(1, 20)), bytes(frame(bytes([U, 0x86, 4]))))
r.beat = 78
r.go(5000, beat_ms=250)
check("locked, heartbeat every 0.25 s: armed", r.armed(), 1)

# The unlock key is a board setting (config settings_key); the default then fails.
bank = regbank.RegBank("motor")
srv = RtuServer(bank, U, 115200, ("GreenEdge", "motor", "1.0.0"))
srv.key1, srv.key2 = 0x1234, 0x4321
run(srv, w6(3, 1))
check("other key: 0x5AFE refused (03)", run(srv, w6(3, 0x5AFE)), bytes(frame(bytes([U, 0x86, 3]))))
run(srv, w6(3, 0x1234))
run(srv, w6(3, 0x4321))
check("other key: its own words open", bank.hr[3], 0)
finish()
