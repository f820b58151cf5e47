"""Seeded fuzz: 10,000 random and malformed bursts at a firmware device.

Each burst is one write followed by a silence well above 3.5 characters. The
test predicts from the bytes alone, with a model of RTU framing by length
(_Framing below, written from the rules in firmware/rtuframe.py's docstring),
which bursts hold valid frames (CRC), which are for this unit and which
overflow the receive buffer, then checks that the device answers exactly
those, that its diagnostic counters add up exactly, and that it still answers
correctly afterwards. Every reply must be a well-formed frame for this unit,
for a request addressed to it.

Each silence is one the device really sees: the device runs under SCHED_FIFO
(a board owns its CPU) on a bare pty pair, and the next burst goes out only
after the device's read() calls have taken every byte sent (rchar in
/proc/PID/io) plus the gap. Before that sync, a loaded host or the kernel's
tty delivery merged two bursts into one read now and then, and the bus-error
count (two fragments counted once) missed the model by one in 3 of 3 runs
beside a busy core. A fragment the device may or may not have dropped for its
age (a gap near 100 ms) is settled by asking the device's bus-error counter.

Framing by length makes the outcome independent of how the device's reads cut
the stream: a burst read together with the next one (a busy host) frames the
same, except after a burst of an unknown function code, the one case that
still ends at a silence.
"""

import copy
import os
import random
import time
import tty

import pytest

from hil_tests.devices import DeviceProcess
from hil_tests.rawbus import RawPort, check, crc16, frame

UNIT = 5
N_BURSTS = 10_000
RX_BUF = 264  # firmware/rtuframe.py _BUF: the longest request
GAP_S = 0.006  # far above 1.75 ms: a busy host can delay the device by a few ms
STALE_NEAR_S = 0.08  # a gap this long may reach the device's 100 ms fragment timeout...
STALE_SURE_S = 0.15  # ...so it is stretched to this, where it surely does


def _pdu(rng):
    fc = rng.choice([1, 2, 3, 4, 5, 6, 8, 15, 16, 43, rng.randrange(256)])
    addr = rng.choice([0, 1, 3, 16, 32, 48, 50, 51, rng.randrange(65536)])
    if fc in (1, 2, 3, 4):
        qty = rng.choice([0, 1, 2, 10, 125, 126, 2000, rng.randrange(65536)])
        return bytes([fc]) + addr.to_bytes(2, "big") + qty.to_bytes(2, "big")
    if fc in (5, 6):
        val = rng.choice([0, 0xFF00, 1, 5000, 10001, rng.randrange(65536)])
        return bytes([fc]) + addr.to_bytes(2, "big") + val.to_bytes(2, "big")
    if fc == 16:
        qty = rng.choice([1, 2, 5, 123, 124, rng.randrange(1, 130)])
        data = bytes(rng.randrange(256) for _ in range(2 * min(qty, 123)))
        bc = rng.choice([len(data), len(data), rng.randrange(256)])
        return bytes([fc]) + addr.to_bytes(2, "big") + qty.to_bytes(2, "big") + bytes([bc & 0xFF]) + data
    if fc == 15:
        qty = rng.choice([1, 2, 8, 9, 2000])
        data = bytes(rng.randrange(256) for _ in range(min((qty + 7) // 8, 200)))
        return bytes([fc]) + addr.to_bytes(2, "big") + qty.to_bytes(2, "big") + bytes([len(data) & 0xFF]) + data
    if fc == 8:
        sub = rng.choice([0, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x12, rng.randrange(65536)])
        return bytes([fc]) + sub.to_bytes(2, "big") + bytes(rng.randrange(256) for _ in range(rng.choice([2, 2, 4])))
    if fc == 43:
        return bytes([43, rng.choice([0x0E, 0x0D]), rng.randrange(6), rng.randrange(9)])
    return bytes([fc]) + bytes(rng.randrange(256) for _ in range(rng.randrange(8)))


def _burst(rng):
    kind = rng.random()
    if kind < 0.30:
        return frame(UNIT, _pdu(rng))
    if kind < 0.40:
        return frame(rng.choice([1, 6, 247, 200]), _pdu(rng))
    if kind < 0.45:
        return frame(0, _pdu(rng))  # broadcast: may write; never answered
    if kind < 0.60:
        f = frame(UNIT, _pdu(rng))
        return f[:rng.randrange(1, len(f))]  # truncated
    if kind < 0.67:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(RX_BUF + 1, 420)))
    if kind < 0.85:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    f = frame(UNIT, _pdu(rng))
    return f + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))  # trailing garbage


def _request_len(b, s):
    """Length of the request at b[s:] (None: more bytes needed, -1: unknown
    function, ends at a silence): FC 1-6 and 8: 8, 43: 7, 15/16: 9 + count."""
    if len(b) - s < 2:
        return None
    fc = b[s + 1]
    if 1 <= fc <= 6 or fc == 8:
        return 8
    if fc == 43:
        return 7
    if fc in (15, 16):
        return 9 + b[s + 6] if len(b) - s >= 7 else None
    return -1


def _is_clear(f):
    """FC08 / 0A: clear the counters."""
    return len(f) == 8 and f[1] == 8 and f[2:6] == b"\x00\x0a\x00\x00"


class _Framing:
    """What the device's receiver makes of a byte stream with silences.

    A frame is cut at the length its function code gives; a CRC failure is one
    bus error, then a hunt byte by byte (known function codes only). At a
    silence the open bytes are searched once for a whole frame (by length, or
    to the end for an unknown function); what is left stays open as a frame a
    gap may have split: the bytes after the silence win if they make a whole
    frame first, a second silence makes the part before the first a fragment.
    After a request for another unit, that unit's reply is skipped by the
    length the request implies. A receive buffer of RX_BUF bytes. Counts what
    the device counts.
    """

    def __init__(self, unit):
        self.unit = unit
        self.b = bytearray()
        self.s = self.need = self.g = self.h0 = 0
        self.hunting = self.overrun = False
        self.exp = None
        self.bus_msg = self.bus_err = self.server = 0
        self.answered = []  # requests for this unit, in order
        self.counted = []  # bus errors at each FC08/0C read

    def _reset(self):
        self.b = bytearray()
        self.s = self.need = self.g = self.h0 = 0
        self.hunting = self.overrun = False

    def _compact(self):
        s = self.s
        del self.b[:s]
        self.g = self.g - s if self.g > s else 0
        self.h0 = self.h0 - s if self.h0 > s else 0
        self.s = 0

    def feed(self, data):
        for x in data:
            if len(self.b) == RX_BUF:
                self._compact()
                if len(self.b) == RX_BUF:
                    self._fail()  # too long to be a frame: hunt in it
                    self.scan()
                    self._compact()
            self.b.append(x)
            self.scan()

    def _ok(self, s, ln):
        return check(bytes(self.b[s:s + ln]))

    def _expected(self, s, m):
        if self.exp is not None:
            u, fc, ln = self.exp
            self.exp = None
            if self.b[s] == u and self.b[s + 1] == fc | 0x80:
                return 5
            if self.b[s] == u and self.b[s + 1] == fc:
                return ln
        return _request_len(self.b, s)

    def _frame(self, f):
        self.bus_msg += 1
        u = f[0]
        if u in (0, self.unit):
            self.server += 1
        if u == self.unit:
            self.answered.append(bytes(f))
            if len(f) == 8 and f[1] == 8 and f[2:6] == b"\x00\x0c\x00\x00":
                self.counted.append(self.bus_err)  # what FC08/0C answers
            if _is_clear(f):
                self.bus_msg = self.bus_err = self.server = 0
        if u not in (0, self.unit):
            fc = f[1]
            q = int.from_bytes(f[4:6], "big") if len(f) >= 6 else 0
            ln = {1: 5 + (q + 7) // 8, 2: 5 + (q + 7) // 8, 3: 5 + 2 * q, 4: 5 + 2 * q}.get(
                fc, 8 if fc in (5, 6, 8, 15, 16) else -1)
            self.exp = (u, fc, ln)

    def _take(self, s, ln):
        f = self.b[s:s + ln]
        self.s, self.need, self.g, self.hunting = s + ln, 0, 0, False
        self._frame(f)
        if self.s == len(self.b):
            self._reset()

    def _fail(self):
        if self.g:
            self.bus_err += 1
            self.s, self.g, self.hunting = self.g, 0, False
        else:
            if not self.hunting:
                self.bus_err += 1
                self.hunting, self.h0 = True, self.s
            self.s += 1
        self.need = 0

    def scan(self):
        b = self.b
        while len(b) > self.s:
            s = self.s
            m = len(b) - s
            if self.need == 0:
                ln = self._expected(s, m) if m >= 2 else None
                if ln is None:
                    return
                if ln < 0 and self.hunting:
                    self.s += 1
                    continue
                if ln > RX_BUF:
                    self._fail()
                    continue
                self.need = ln
            if self.g:
                g = self.g
                lg = _request_len(b, g)
                if lg is not None and 0 < lg <= len(b) - g and lg <= RX_BUF and self._ok(g, lg):
                    self.bus_err += 1
                    self.s, s, self.g, self.need = g, g, 0, lg
                    m = len(b) - s
            if self.need < 0 or m < self.need:
                return
            if not self._ok(s, self.need):
                self._fail()
                continue
            self._take(s, self.need)
            b = self.b

    def _end(self, s):
        """Smallest e >= s + 4 with a valid CRC over b[s:e], else -1."""
        for e in range(s + 4, len(self.b) + 1):
            if self._ok(s, e - s):
                return e
        return -1

    def _find(self, start):
        n = len(self.b)
        for p in range(start, n - 3):
            ln = _request_len(self.b, p)
            if ln is not None and 0 < ln <= n - p and ln <= RX_BUF:
                if self._ok(p, ln):
                    return p
            elif ln is not None and ln < 0 and self._end(p) > 0:
                return p
        return -1

    def silence(self):
        while True:
            s, n = self.s, len(self.b)
            if n == s:
                self._reset()
                return
            if self.need < 0:
                e = self._end(s)
                if e > 0:
                    self._take(s, e - s)
                    self.scan()  # what follows is framed from where it ended
                    continue
            p = self._find((self.h0 if self.hunting else s) + 1)
            if p >= 0:
                if not self.hunting:
                    self.bus_err += 1
                self.exp = None
                self.s, self.hunting, self.g, self.need = p, False, 0, 0
                self.scan()
                continue
            if self.hunting:
                self._reset()
                return
            if self.g:
                self.bus_err += 1
                self.s, self.need, self.g = self.g, 0, 0
                self.scan()
                continue
            self.g = len(self.b)
            return


@pytest.fixture(scope="module")
def device():
    # One pty pair, no bridge: the test holds the master side, the device
    # opens the slave. The device runs under SCHED_FIFO, as a board owns its
    # CPU: the host's load cannot then preempt it between a read and the
    # timestamp its framing takes (two bursts a silence apart would look like
    # one stream).
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    try:
        with DeviceProcess("scr", UNIT, os.ttyname(slave), realtime=True) as dev:
            yield master, dev
    finally:
        os.close(slave)
        os.close(master)


class _DeviceRead:
    """Waits until the device process has read every byte sent so far: its
    read() calls' byte count (rchar in /proc/PID/io; after start it reads
    nothing but its tty). Only then does the silence before the next burst
    start, so neither the host's load nor the kernel's tty delivery can merge
    two bursts into one read."""

    def __init__(self, pid):
        self.path = "/proc/%d/io" % pid
        self.expect = self._rchar()

    def _rchar(self):
        with open(self.path) as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
        raise AssertionError("no rchar in %s" % self.path)

    def wait(self, n_sent):
        self.expect += n_sent
        deadline = time.monotonic() + 10.0
        while True:
            got = self._rchar()
            if got >= self.expect:
                assert got == self.expect, "the device read %d bytes more than were sent" % (
                    got - self.expect)
                return time.monotonic()
            assert time.monotonic() < deadline, "the device stopped reading (%d of %d)" % (
                got, self.expect)
            time.sleep(0.0002)


def _counted_at(m):
    return m.counted.pop() if m.counted else None


def test_fuzz_10000_bursts_counters_add_up(device):
    master, dev = device
    rng = random.Random(20261123)
    with RawPort.from_fd(master) as port:
        port.drain()
        sync = _DeviceRead(dev.proc.pid)
        clear = frame(UNIT, b"\x08\x00\x0a\x00\x00")
        assert port.transact(clear) == clear
        sync.wait(len(clear))
        model = _Framing(UNIT)
        answered = exc_replies = resolved = 0
        prev = b""
        t_sent = t_read = time.monotonic()
        for _ in range(N_BURSTS):
            b = _burst(rng)
            # The device drops a fragment after 100 ms of quiet (rtuframe
            # _STALE_US); the model has no clock. A gap that load stretched
            # near that edge is made long (150 ms after the device surely had
            # the last burst), and the model drops its fragment too.
            open_fragment = len(model.b) > model.s
            if open_fragment and time.monotonic() - t_sent >= STALE_NEAR_S:
                time.sleep(max(0.0, STALE_SURE_S - (time.monotonic() - t_read)))
                model.bus_err += 1
                model._reset()
                open_fragment = False
            kept = copy.deepcopy(model) if open_fragment else None
            before = len(model.answered)
            model.feed(b)
            model.silence()
            asked = model.answered[before:]
            t_prev_sent = t_sent
            port.send(b)
            t_sent = time.monotonic()
            t_read = sync.wait(len(b))
            if kept is not None and t_read - t_prev_sent >= 0.095:
                # The device may or may not have dropped the fragment before
                # this burst reached it: ask its bus-error counter (one more
                # valid request, in both readings of the model).
                dropped = kept
                dropped.bus_err += 1
                dropped._reset()
                dropped.feed(b)
                dropped.silence()
                replies = []
                while True:
                    r = port.read_frame(timeout=0.2, silence=0.003)
                    if not r:
                        break
                    replies.append(r)
                ask = frame(UNIT, b"\x08\x00\x0c\x00\x00")
                port.send(ask)
                r = port.read_frame(timeout=1.0, silence=0.003)
                assert check(r), r.hex()
                sync.wait(len(ask))
                n_err = int.from_bytes(r[4:6], "big")
                fits, seen = [], []
                for m in (model, dropped):
                    m.feed(ask)
                    m.silence()
                    got = (len(m.answered) - before - 1, _counted_at(m))
                    seen.append(got)
                    if got == (len(replies), n_err):
                        fits.append(m)
                assert fits, "neither reading of the fragment fits the device's (%d replies, %d bus" \
                    " errors): kept %s, dropped %s (burst %s, after %s)" % (
                        len(replies), n_err, seen[0], seen[1], b.hex(), prev.hex())
                model = fits[0]
                resolved += 1
                asked = model.answered[before:-1]
                for req, reply in zip(asked, replies):
                    assert check(reply) and reply[0] == UNIT, reply.hex()
                    assert reply[1] in (req[1], req[1] | 0x80), (req.hex(), reply.hex())
                    if reply[1] & 0x80:
                        exc_replies += 1
                    answered += 1
                    if _is_clear(req):
                        exc_replies = 0
                answered += 1
                prev = b
                continue
            for req in asked:
                reply = port.read_frame(timeout=1.0, silence=0.003)
                assert reply, "no reply to %s (burst %s, after %s)" % (req.hex(), b.hex(),
                                                                      prev.hex())
                assert check(reply) and reply[0] == UNIT, reply.hex()
                assert reply[1] in (req[1], req[1] | 0x80), (req.hex(), reply.hex())
                if reply[1] & 0x80:
                    exc_replies += 1
                    assert reply[2] in (1, 2, 3, 4) and len(reply) == 5
                answered += 1
                if _is_clear(req):
                    exc_replies = 0  # the device's counters restart here too
            if not asked:
                assert port.read_frame(timeout=GAP_S, silence=0.002) == b"", b.hex()
            prev = b
        assert dev.alive()
        if len(model.b) > model.s:
            model.bus_err += 1  # a fragment left at the end: dropped as stale, one error

        def count(sub):
            r = port.transact(frame(UNIT, bytes([8, 0, sub, 0, 0])))
            assert check(r), r.hex()
            return int.from_bytes(r[4:6], "big")

        # Each counter read is itself one more valid frame for this unit.
        assert count(0x0B) == model.bus_msg + 1
        assert count(0x0C) == model.bus_err
        assert count(0x0D) == exc_replies
        assert count(0x0E) == model.server + 4
    assert answered > 2000
    assert resolved < N_BURSTS // 100, "%d fragment timeouts needed the counter to resolve" % resolved
    # Still correct after the storm: identity and a plain read.
    with RawPort.from_fd(master, own=False) as port:
        r = port.transact(frame(UNIT, b"\x04\x00\x00\x00\x03"))
        assert r == frame(UNIT, b"\x04\x06\x00\x01\x00\x03\x01\x00")
