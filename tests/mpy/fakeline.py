"""A serial line and select.poll on the simulated clock of wraptime, so the
device's whole main loop (Device.run) runs in tests without waiting.

Line: the UART as the device sees it. Bytes are scheduled at absolute
simulated microseconds (send(), stream()); readinto() hands over those whose
time has come and costs the device _READ_COST_US of CPU time; write() records
what the device sends. ipoll() (the fake select's) moves the clock to the next
byte or the timeout. The run ends with StopSim at `end_us`.
"""

import wraptime

_READ_COST_US = 20
CHAR_US = 96  # one 11-bit character at 115200 baud


class StopSim(Exception):
    pass


def now_us():
    return wraptime.now_ms[0] * 1000 + wraptime.sub_us[0]


class Line:
    def __init__(self, end_us):
        self.port = self
        self.segs = []  # [start us, bytes], one character every CHAR_US, in time order
        self.seg = 0
        self.i = 0  # next byte of segs[seg]
        self.out = []  # (time us, bytes) the device wrote
        self.end_us = end_us
        self.probes = []  # [time us, fn, result]

    def send(self, t_us, data):
        """data on the wire from t_us, one character every CHAR_US."""
        self.segs.append([t_us, data])

    def _check(self):
        t = now_us()
        for p in self.probes:
            if p[2] is None and t >= p[0]:
                p[2] = p[1]()
        if t >= self.end_us:
            raise StopSim()

    def readinto(self, buf):
        wraptime.advance_us(_READ_COST_US)
        self._check()
        t = now_us()
        k = 0
        while k < len(buf):
            nxt = self.next_us()
            if nxt is None or nxt > t:
                break
            buf[k] = self.segs[self.seg][1][self.i]
            k += 1
            self.i += 1
            if self.i == len(self.segs[self.seg][1]):
                self.seg += 1
                self.i = 0
        return k

    def write(self, buf, n):
        self.out.append((now_us(), bytes(buf[:n])))

    def next_us(self):
        if self.seg >= len(self.segs):
            return None
        return self.segs[self.seg][0] + self.i * CHAR_US


POLLIN = 1


class _Poll:
    def __init__(self, line):
        self.line = line

    def register(self, obj, mask):
        pass

    def ipoll(self, timeout_ms):
        nxt = self.line.next_us()
        limit = now_us() + timeout_ms * 1000
        if nxt is not None and nxt <= limit:
            if nxt > now_us():
                wraptime.advance_us(nxt - now_us())
            return [(self.line, POLLIN)]  # as MicroPython's ipoll: (obj, events)
        wraptime.advance_us(limit - now_us())
        return []


class Select:
    """Stand-in for the select module: sys.modules["select"] = Select(line)."""
    POLLIN = 1
    POLLERR = 8
    POLLHUP = 16

    def __init__(self, line):
        self.line = line

    def poll(self):
        return _Poll(self.line)
