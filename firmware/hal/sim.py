"""Sim HAL for the MicroPython unix port: the serial line is a tty path.

The tty (a pty of the virtual RS-485 line, or a real USB adapter) is opened raw
with termios, VMIN = VTIME = 0 so readinto() returns what is there (0 if
nothing) and never blocks; the main loop waits on it with select.poll. Parity
cannot be set on a pty: the line emulates the character time, not the device.

The watchdog is a software timer checked by its own task: on expiry the process
exits with status 3 (the supervisor of the process restarts it, like a reset).
"""

import sys
import termios  # type: ignore[import-not-found]  # unix port only
import time

_BAUDS = {9600: "B9600", 57600: "B57600", 115200: "B115200", 230400: "B230400",
          460800: "B460800", 921600: "B921600"}
_VMIN = 6
_VTIME = 5
WDT_EXIT = 3


class Uart:
    def __init__(self, path, baud):
        try:
            self.port = open(path, "r+b")
        except OSError as e:
            raise ValueError("cannot open serial port %r: %s" % (path, e))
        fd = self.port.fileno()
        termios.setraw(fd)
        attr = termios.tcgetattr(fd)
        attr[6][_VMIN] = 0
        attr[6][_VTIME] = 0
        name = _BAUDS.get(baud)
        if name is not None and hasattr(termios, name):
            attr[4] = attr[5] = getattr(termios, name)
        termios.tcsetattr(fd, termios.TCSANOW, attr)

    def readinto(self, buf):
        n = self.port.readinto(buf)
        return n or 0

    def write(self, buf, n):
        self.port.write(memoryview(buf)[:n])


class Wdt:
    def __init__(self, timeout_ms):
        self.timeout_ms = timeout_ms
        self.last = time.ticks_ms()

    def feed(self):
        self.last = time.ticks_ms()

    def expired(self, now_ms):
        return time.ticks_diff(now_ms, self.last) > self.timeout_ms

    def fire(self):
        print("watchdog: not fed for %d ms, resetting" % self.timeout_ms)
        sys.exit(WDT_EXIT)


def reset_cause(arg=None):
    # The process starter passes the cause; a cold start is power-on.
    return 0 if arg is None else int(arg)
