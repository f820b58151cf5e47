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
candidate must pass its CRC-16). At a silence, the bytes still open are
searched once for a whole frame (two frames read as one chunk: garbage, then a
request; a frame of unknown function ends at its first valid CRC); what is left stays open as a frame a scheduling gap may have split,
until the bytes after the silence make a whole frame of their own or the next
silence shows the joined bytes are not one. A fragment left alone for
_STALE_US is dropped. Each fragment or hunt counts one bus error. A read that
filled the whole chunk means more bytes were already waiting: the time to the
next read is then no silence.

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
def _crc_end(buf: ptr8, s: int, n: int, tab: ptr16) -> int:
    # Smallest e in s+4..n with a valid CRC over buf[s:e] (one pass), else -1.
    crc = 0xFFFF
    j = s
    while j + 2 < n:
        crc = (crc >> 8) ^ tab[(crc ^ buf[j]) & 0xFF]
        if j - s >= 1 and crc == (buf[j + 1] | (buf[j + 2] << 8)):
            return j + 3
        j += 1
    return -1


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
        self.h0 = 0  # where the hunt began
        self.gapped = True  # the silence since the last byte was handled
        self.full = False  # the last read filled its chunk: more was waiting
        self.last_rx_us = 0
        self.reply_n = 0  # reply in tx, due after the silence
        self.exp_unit = -1  # another unit's reply expected next: unit, fc, length
        self.exp_fc = 0
        self.exp_len = 0
        self.ended = False  # the open frame of unknown function has had its silence

    # ---- bytes in ---------------------------------------------------------------
    def feed(self, chunk, k, now_us):
        """Take chunk[:k], read at now_us (call it after every read, k = 0
        too); frames found are handled at once (a reply then waits in tx: see
        poll and take)."""
        was_full = self.full
        self.full = k == len(chunk)
        if not k:
            return
        if not self.gapped and not was_full \
                and ticks_diff(now_us, self.last_rx_us) >= self.t35_us:
            self._gap()
        self.gapped = False
        self.last_rx_us = now_us
        rx = self.rx
        i = 0
        while i < k:
            if self.n == _BUF:
                self._compact()
                if self.n == _BUF:
                    # Only a frame of unknown function gets this long: it cannot
                    # be one, so hunt in it (a request read with it is kept).
                    self._inc(C_OVERRUN)
                    self._fail()
                    self.scan()
                    self._compact()
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
        if quiet < self.t35_us or self.full:
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
    def resume(self):
        """After a held reply was taken: frame what waited behind it."""
        if self.ended:
            self.ended = False
            self._gap()
        else:
            self.scan()

    def _reset(self):
        self.s = self.n = self.need = self.g = self.h0 = 0
        self.hunting = False
        self.ended = False

    def _compact(self):
        s = self.s
        if s:
            _move(self.rx, 0, s, self.n - s)
            self.n -= s
            self.g = self.g - s if self.g > s else 0
            self.h0 = self.h0 - s if self.h0 > s else 0
            self.s = 0

    def _gap(self):
        """3.5 characters of silence after rx[n - 1]."""
        while True:
            s = self.s
            n = self.n
            if n == s:
                self._reset()
                return
            if self.need < 0:
                # Unknown function: the silence ends it, or the first valid CRC
                # (another frame may have been read with it).
                e = _crc_end(self.rx, s, n, _CRC_TABLE)
                if e > 0:
                    if self.reply_n and self.rx[s] == self.unit:
                        # Its silence has passed, but the held reply goes
                        # first: resume() frames it once that is out.
                        self.ended = True
                        return
                    self._take_frame(s, e - s)
                    # What follows is framed from where this frame ended
                    # (the search below starts one byte past s).
                    self.scan()
                    continue
            # Search what is open for a whole frame (read together with garbage).
            p = self._find((self.h0 if self.hunting else s) + 1)
            if p >= 0:
                if not self.hunting:
                    self._inc(C_BUS_ERR)  # the bytes before it
                self.exp_unit = -1  # found by its request length
                self.s = p
                self.hunting = False
                self.g = 0
                self.need = 0
                self.scan()
                continue
            if self.hunting:
                self._reset()
                return
            if self.g:
                # A second silence inside one frame: what came before the first
                # was a fragment; the bytes after it are the frame now.
                self._inc(C_BUS_ERR)
                self.s = self.g
                self.need = 0
                self.g = 0
                self.scan()
                continue
            self.g = self.n  # may be a split frame: both readings stay open
            return

    def _find(self, start):
        """First p >= start where rx[p:] holds a whole valid frame (by length,
        or up to n for an unknown function); -1 if none."""
        n = self.n
        for p in range(start, n - 3):
            ln = request_len(self.rx, p, n - p)
            if 0 < ln <= n - p and ln <= _BUF:
                if self._crc_ok(p, ln):
                    return p
            elif ln < 0 and _crc_end(self.rx, p, n, _CRC_TABLE) > 0:
                return p
        return -1

    def _take_frame(self, s, ln):
        _move(self.rx, 0, s, ln)
        self.s = s + ln
        self.need = 0
        self.g = 0
        self.hunting = False
        self.ended = False
        self._frame(ln)
        if self.s == self.n:
            self._reset()

    def scan(self):
        """Frame what is in rx; stops early while a reply is held and another
        frame for this unit is complete (take() it, then scan again)."""
        rx = self.rx
        while self.n > self.s:
            s = self.s
            m = self.n - s
            if self.need == 0:
                ln = self._expected(s, m) if m >= 2 else 0
                if ln == 0:
                    return
                if ln < 0 and self.hunting:
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
                return
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
                self.h0 = self.s
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
