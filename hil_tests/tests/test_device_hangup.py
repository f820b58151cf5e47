"""A device whose tty hangs up (an unplugged USB adapter on the unix port, a
bench line closed under it) idles instead of spinning, and its jobs go on: the
comm-loss safe state still comes.

Before: poll() returned POLLHUP at once on every pass and the firmware took a
whole core (1.8 CPU-s in 2 s; three such orphans were seen at ~60 % CPU each).
"""

import os
import time
import tty

from hil_tests.devices import DeviceProcess
from hil_tests.rawbus import RawPort, frame

UNIT = 3


def _cpu_s(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_hung_up_device_idles_and_still_goes_safe_on_comm_loss():
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    with DeviceProcess("motor", UNIT, os.ttyname(slave)) as dev:
        port = RawPort.from_fd(master)
        timeout = frame(UNIT, b"\x06\x00\x01\x00\x0a")  # comm-loss timeout 1.0 s
        arm = frame(UNIT, b"\x06\x00\x00\x00\x01")
        assert port.transact(timeout, timeout=1.0) == timeout
        assert port.transact(arm, timeout=1.0) == arm
        os.close(slave)
        os.close(master)  # the line is gone: the device's tty hangs up
        c0 = _cpu_s(dev.proc.pid)
        t0 = time.monotonic()
        line = dev.wait_line("comm loss", 5.0)
        time.sleep(1.0)
        used = _cpu_s(dev.proc.pid) - c0
        wall = time.monotonic() - t0
        assert dev.alive()
        assert line is not None, "no comm-loss safe state after the hang-up"
        # CPU time, not wall time: idle is ~0.03 CPU-s per s, spinning was ~0.9.
        assert used < 0.25 * wall, "%.2f CPU-s in %.1f s while hung up" % (used, wall)
