"""Modbus RTU receiver: bytes in, whole frames out, framed by length.

Pure logic (no I/O): feed() takes the bytes read from the UART with the
microsecond tick they were read at; complete frames go to self.handle(n) (the
server's frame handler, frame in rx[:n]); poll() says when a reply is due.

Framing, as libmodbus does it: the length of a request follows from its
function code (and byte count): FC 1-6 and 8 are 8 bytes, 43 is 7 bytes,
15 and 16 are 9 + byte count. A frame ends when its length is in, whatever the
timing: frames read back to back (a job that ran longer than 3.5 characters)
and a frame split by a scheduling gap are both read right. Only an unknown
function code falls back to the 3.5-character silence to end the frame.
On a multi-drop line, a request for another unit is followed by that unit's
reply: its length comes from the request (FC 1/2: 5 + ceil(qty / 8), FC 3/4:
5 + 2 qty, writes and 08: 8, an exception: 5), so it is skipped by length too.

Resynchronisation: a frame whose CRC fails is one bus error; the receiver then
hunts byte by byte for the next frame start with a known function code (every
candidate must pass its CRC-16), and a silence ends the hunt. A fragment
followed by a silence and a new frame (a truncated request) is dropped as soon
as the bytes after the silence make a whole frame. A fragment left alone for
_STALE_US is dropped. Each fragment or hunt counts one bus error.

Replies leave once 3.5 characters of silence have passed after the last byte
(the request never runs into its reply), or at once when more bytes follow
(the master is already sending again: the reply is not held back).

Allocation: none in feed/scan/poll (buffers from __init__; viper helpers).
"""

from array import array

import micropython
from micropython import const
from time import ticks_diff

_BUF = const(264)  # the longest request: FC 15/16 with byte count 255
_STALE_US = const(100000)
C_BUS_MSG = const(0)
C_BUS_ERR = const(1)
C_OVERRUN = const(7)


def _make_crc_table():
    t = array("H", bytes(512))
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        t[i] = c
    return t


_CRC_TABLE = _make_crc_table()


@micropython.viper
def _crc16(buf: ptr8, off: int, n: int, tab: ptr16) -> int:
    crc = 0xFFFF
    i = off
    end = off + n
    while i < end:
        crc = (crc >> 8) ^ tab[(crc ^ buf[i]) & 0xFF]
        i += 1
    return crc


@micropython.viper
def _move(buf: ptr8, dst: int, src: int, n: int):
    i = 0
    while i < n:
        buf[dst + i] = buf[src + i]
        i += 1


def crc16(buf, n, off=0):
    """Modbus CRC-16 of buf[off:off + n] (low byte goes first on the wire)."""
    return _crc16(buf, off, n, _CRC_TABLE)


def silence_us(baud):
    """The 3.5-character inter-frame silence in microseconds (11-bit chars)."""
    if baud > 19200:
        return 1750
    return (35 * 11 * 1000000) // (10 * baud)


def request_len(rx, s, m):
    """Length of the request starting at rx[s] with m bytes in: > 0 known,
    0 more bytes needed first, -1 unknown function (ends at a silence)."""
    if m < 2:
        return 0
    fc = rx[s + 1]
    if 1 <= fc <= 6 or fc == 8:
        return 8
    if fc == 43:
        return 7
    if fc == 15 or fc == 16:
        return 9 + rx[s + 6] if m >= 7 else 0
    return -1


class RtuFramer:
    """Receiver state; RtuServer (modbus_rtu.py) adds the frame handler."""

    def _framer_init(self, baud):
        self.t35_us = silence_us(baud)
        self.rx = bytearray(_BUF)
        self.s = 0  # start of the frame being received in rx
        self.n = 0  # bytes in rx
        self.need = 0  # length of the frame at s: 0 unknown yet, -1 until a silence
        self.g = 0  # a silence fell at rx[g] inside the frame (0: none)
        self.hunting = False
        self.bounded = False  # hunting in bytes a silence closed: skip what cannot complete
        self.overrun = False
        self.gapped = True  # the silence since the last byte was handled
        self.last_rx_us = 0
        self.reply_n = 0  # reply in tx, due after the silence
        self.exp_unit = -1  # another unit's reply expected next: unit, fc, length
        self.exp_fc = 0
        self.exp_len = 0

    # ---- bytes in ---------------------------------------------------------------
    def feed(self, chunk, k, now_us):
        """Take chunk[:k], read at now_us; frames found are handled at once
        (a reply then waits in tx: see poll and take)."""
        if not self.gapped and ticks_diff(now_us, self.last_rx_us) >= self.t35_us:
            self._gap()
        self.gapped = False
        self.last_rx_us = now_us
        rx = self.rx
        i = 0
        while i < k:
            if self.n == _BUF:
                self._compact()
                if self.n == _BUF:
                    self.overrun = True  # only a frame ended by silence gets this long
                    break
            n = self.n
            while i < k and n < _BUF:
                rx[n] = chunk[i]
                n += 1
                i += 1
            self.n = n
            self.scan()

    def backlog(self):
        """Bytes received and not yet framed (a held reply then goes out at once)."""
        return self.n - self.s

    def wait_us(self, now_us):
        """Microseconds until a reply or a frame end by silence is due, 0 if
        due now, -1 if nothing is waiting on the line's timing."""
        if not self.reply_n and (self.gapped or self.n == self.s):
            return -1
        left = self.t35_us - ticks_diff(now_us, self.last_rx_us)
        return left if left > 0 else 0

    def poll(self, now_us):
        """Silence handling; returns the length of a reply due now (0: none)."""
        quiet = ticks_diff(now_us, self.last_rx_us)
        if quiet < self.t35_us:
            return 0
        if not self.gapped:
            self.gapped = True
            self._gap()
        if self.n > self.s and quiet >= _STALE_US:
            self._inc(C_BUS_ERR)  # a fragment nothing completed
            self._reset()
        return self.take()

    def take(self):
        """The held reply's length (the caller sends tx[:length]); clears it."""
        r = self.reply_n
        self.reply_n = 0
        return r

    # ---- framing ------------------------------------------------------------------
    def _reset(self):
        self.s = self.n = self.need = self.g = 0
        self.hunting = False
        self.bounded = False
        self.overrun = False

    def _compact(self):
        s = self.s
        if s:
            _move(self.rx, 0, s, self.n - s)
            self.n -= s
            if self.g:
                self.g -= s
            self.s = 0

    def _gap(self):
        """3.5 characters of silence after rx[n - 1]."""
        m = self.n - self.s
        if m == 0:
            self._reset()
        elif self.hunting:
            # The silence ends the hunt: what is in is searched once more for
            # a whole frame (two frames read as one chunk), the rest dropped.
            self._hunt_in(self.s + 1)
        elif self.need < 0:
            # Unknown function: the silence ends it.
            self._compact()
            n = self.n
            if self.overrun:
                self._inc(C_OVERRUN)
                self._inc(C_BUS_ERR)
                self._reset()
            elif n >= 4 and self._crc_ok(0, n):
                self._frame(n)
                self._reset()
            else:
                self._inc(C_BUS_ERR)
                self._hunt_in(1)
        elif self.need == 0 and m < 2:
            self._inc(C_BUS_ERR)
            self._reset()
        elif self.g:
            # A second silence inside one frame: what came before the first was
            # a fragment; the bytes after it are the frame now.
            self._inc(C_BUS_ERR)
            self.s = self.g
            self.need = 0
            self.g = self.n
        else:
            self.g = self.n  # may be a split frame: both readings stay open

    def _hunt_in(self, start):
        """Search rx[start:n] (bytes that a silence closed) for whole frames."""
        self.hunting = True
        self.bounded = True
        self.s = start
        self.need = 0
        self.g = 0
        self.scan()

    def scan(self):
        """Frame what is in rx; stops early while a reply is held and another
        frame for this unit is complete (take() it, then scan again)."""
        rx = self.rx
        while self.n > self.s:
            s = self.s
            m = self.n - s
            if self.need == 0:
                ln = self._expected(s, m) if m >= 2 else 0
                if ln == 0 and not self.bounded:
                    return
                if ln <= 0 and (self.hunting or self.bounded):
                    self.s = s + 1
                    continue
                if ln > _BUF:
                    self._fail()
                    continue
                self.need = ln
            if self.g:
                g = self.g
                lg = request_len(rx, g, self.n - g)
                if 0 < lg <= self.n - g and lg <= _BUF and self._crc_ok(g, lg):
                    self._inc(C_BUS_ERR)  # the fragment before the silence
                    self.s = g
                    self.g = 0
                    self.need = lg
                    s = g
                    m = self.n - s
            if self.need < 0 or m < self.need:
                if not self.bounded:
                    return
                self.s = s + 1  # cannot complete: no more bytes belong to it
                self.need = 0
                continue
            ln = self.need
            if not self._crc_ok(s, ln):
                self._fail()
                continue
            if self.reply_n and rx[s] == self.unit:
                return  # the held reply goes first
            _move(rx, 0, s, ln)
            self.s = s + ln
            self.need = 0
            self.g = 0
            self.hunting = False
            self._frame(ln)
        if self.bounded:
            self._reset()

    def _expected(self, s, m):
        rx = self.rx
        if self.exp_unit >= 0:
            u, fc = self.exp_unit, self.exp_fc
            self.exp_unit = -1
            if rx[s] == u and rx[s + 1] == (fc | 0x80):
                return 5
            if rx[s] == u and rx[s + 1] == fc:
                return self.exp_len
        return request_len(rx, s, m)

    def _crc_ok(self, s, ln):
        rx = self.rx
        return crc16(rx, ln - 2, s) == (rx[s + ln - 2] | (rx[s + ln - 1] << 8))

    def _fail(self):
        """The frame at s fails its CRC (or cannot be that long)."""
        if self.g:
            self._inc(C_BUS_ERR)
            self.s = self.g
            self.g = 0
            self.hunting = False
        else:
            if not self.hunting:
                self._inc(C_BUS_ERR)
                self.hunting = True
            self.s += 1
        self.need = 0

    def _frame(self, n):
        """A whole frame in rx[:n]: handle it, hold the reply, and note what
        another unit's reply to it will look like."""
        r = self.handle(n)
        if r:
            self.reply_n = r
        rx = self.rx
        u = rx[0]
        if u != 0 and u != self.unit and n >= 4:
            fc = rx[1]
            self.exp_unit = u
            self.exp_fc = fc
            q = (rx[4] << 8) | rx[5] if n >= 6 else 0
            if fc == 1 or fc == 2:
                self.exp_len = 5 + ((q + 7) >> 3)
            elif fc == 3 or fc == 4:
                self.exp_len = 5 + 2 * q
            elif fc in (5, 6, 8, 15, 16):
                self.exp_len = 8
            else:
                self.exp_len = -1
