"""Seeded fuzz: 10,000 random and malformed bursts at a firmware device.

Each burst is one write followed by a silence well above 3.5 characters. The
test predicts from the bytes alone, with a model of RTU framing by length
(_Framing below, written from the rules in firmware/rtuframe.py's docstring),
which bursts hold valid frames (CRC), which are for this unit and which
overflow the receive buffer, then checks that the device answers exactly
those, that its diagnostic counters add up exactly, and that it still answers
correctly afterwards. Every reply must be a well-formed frame for this unit,
for a request addressed to it.

Framing by length makes the outcome independent of how the device's reads cut
the stream: a burst read together with the next one (a busy host) frames the
same, except after a burst of an unknown function code, the one case that
still ends at a silence.
"""

import random
import time

import pytest

from hil_tests.devices import DeviceProcess
from hil_tests.rawbus import RawPort, check, crc16, frame
from hil_tests.vline import VirtualLine

UNIT = 5
N_BURSTS = 10_000
RX_BUF = 264  # firmware/rtuframe.py _BUF: the longest request
GAP_S = 0.006  # far above 1.75 ms: a busy host can delay the device by a few ms


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
    bus error, then a hunt byte by byte (known function codes only) until a
    frame passes or a silence ends the hunt, when the bytes in are searched
    once more for a whole frame. An unknown function code ends at a silence.
    A silence inside a frame is kept open both ways: the frame as joined, or
    a new frame from the silence on (the part before it then one error). After
    a request for another unit, that unit's reply is skipped by the length the
    request implies. Counts what the device counts.
    """

    def __init__(self, unit):
        self.unit = unit
        self.b = bytearray()
        self.s = 0
        self.need = None
        self.g = 0
        self.hunting = self.bounded = self.overrun = False
        self.exp = None
        self.bus_msg = self.bus_err = self.server = 0
        self.answered = []  # requests for this unit, in order

    def _reset(self):
        self.b = bytearray()
        self.s = self.g = 0
        self.need = None
        self.hunting = self.bounded = self.overrun = False

    def feed(self, data):
        for x in data:
            if len(self.b) - self.s >= RX_BUF:
                self.overrun = True
                continue
            self.b.append(x)
            self.scan()

    def _expected(self, s):
        b = self.b
        if self.exp is not None:
            u, fc, ln = self.exp
            self.exp = None
            if b[s] == u and b[s + 1] == fc | 0x80:
                return 5
            if b[s] == u and b[s + 1] == fc:
                return ln
        return _request_len(b, s)

    def _frame(self, f):
        self.bus_msg += 1
        u = f[0]
        if u in (0, self.unit):
            self.server += 1
        if u == self.unit:
            self.answered.append(bytes(f))
            if _is_clear(f):
                self.bus_msg = self.bus_err = self.server = 0
        if u not in (0, self.unit):
            fc = f[1]
            q = int.from_bytes(f[4:6], "big") if len(f) >= 6 else 0
            ln = {1: 5 + (q + 7) // 8, 2: 5 + (q + 7) // 8, 3: 5 + 2 * q, 4: 5 + 2 * q}.get(
                fc, 8 if fc in (5, 6, 8, 15, 16) else -1)
            self.exp = (u, fc, ln)

    def _fail(self):
        if self.g:
            self.bus_err += 1
            self.s, self.g, self.hunting = self.g, 0, False
        else:
            if not self.hunting:
                self.bus_err += 1
                self.hunting = True
            self.s += 1
        self.need = None

    def scan(self):
        b = self.b
        while len(b) > self.s:
            s = self.s
            m = len(b) - s
            if self.need is None:
                ln = self._expected(s) if m >= 2 else None
                if ln is None and not self.bounded:
                    return
                if (ln is None or ln < 0) and (self.hunting or self.bounded):
                    self.s += 1
                    continue
                if ln > RX_BUF:
                    self._fail()
                    continue
                self.need = ln
            if self.g:
                g = self.g
                lg = _request_len(b, g)
                if lg is not None and 0 < lg <= len(b) - g and lg <= RX_BUF \
                        and check(bytes(b[g:g + lg])):
                    self.bus_err += 1
                    self.s, s, self.g, self.need = g, g, 0, lg
                    m = len(b) - s
            if self.need < 0 or m < self.need:
                if not self.bounded:
                    return
                self.s += 1
                self.need = None
                continue
            ln = self.need
            if not check(bytes(b[s:s + ln])):
                self._fail()
                continue
            f = b[s:s + ln]
            self.s = s + ln
            self.need = None
            self.g = 0
            self.hunting = False
            self._frame(f)
        if self.bounded:
            self._reset()

    def silence(self):
        m = len(self.b) - self.s
        if m == 0:
            self._reset()
        elif self.hunting:
            self._hunt_in(self.s + 1)
        elif self.need is not None and self.need < 0:
            f = self.b[self.s:]
            if self.overrun:
                self.bus_err += 1
                self._reset()
            elif len(f) >= 4 and check(bytes(f)):
                self._frame(f)
                self._reset()
            else:
                self.bus_err += 1
                self.b = bytearray(f)
                self._hunt_in(1)
        elif self.need is None and m < 2:
            self.bus_err += 1
            self._reset()
        elif self.g:
            self.bus_err += 1
            self.s, self.need, self.g = self.g, None, len(self.b)
        else:
            self.g = len(self.b)

    def _hunt_in(self, start):
        self.hunting = self.bounded = True
        self.s, self.need, self.g = start, None, 0
        self.scan()


@pytest.fixture(scope="module")
def device():
    with VirtualLine(2, timing=False) as line, DeviceProcess("scr", UNIT, line.ports[1]) as dev:
        yield line, dev


def test_fuzz_10000_bursts_counters_add_up(device):
    line, dev = device
    rng = random.Random(20261123)
    with RawPort(line.ports[0]) as port:
        port.drain()
        assert port.transact(frame(UNIT, b"\x08\x00\x0a\x00\x00")) == frame(UNIT, b"\x08\x00\x0a\x00\x00")
        model = _Framing(UNIT)
        answered = exc_replies = 0
        for _ in range(N_BURSTS):
            b = _burst(rng)
            before = len(model.answered)
            model.feed(b)
            model.silence()
            asked = model.answered[before:]
            port.send(b)
            for req in asked:
                reply = port.read_frame(timeout=0.2, silence=0.003)
                assert reply, "no reply to %s (burst %s)" % (req.hex(), b.hex())
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
    # Still correct after the storm: identity and a plain read.
    with RawPort(line.ports[0]) as port:
        r = port.transact(frame(UNIT, b"\x04\x00\x00\x00\x03"))
        assert r == frame(UNIT, b"\x04\x06\x00\x01\x00\x03\x01\x00")
