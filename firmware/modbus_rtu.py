"""Modbus RTU server (slave) for one unit id on one serial line.

Framing (rtuframe.py): frames are cut by length from the function code, the
3.5-character silence (1.75 ms above 19200 baud, Modbus serial-line spec
2.5.1.1) only resynchronises and ends frames of unknown functions; the reply is
sent once that silence has passed, so it never runs into the request. Pure
logic: bytes come in through feed() with a microsecond timestamp and poll()
says when a reply (in self.tx) is due, so it runs the same on a board, on the
unix port and in tests.

Function codes 01-06, 15, 16, 08 (00, 0A-0E and 0F/12 counters), 43/14. Exceptions:
01 unknown function or sub-function, 02 address outside the map / across a hole /
read-only / half a 32-bit point, 03 quantity, length or value out of range,
04 device failure (a write hook that raises) or a safety setting refused (the
settings are locked; docs/safety.md). Broadcast never writes a safety setting
nor the host heartbeat (one master's broadcast must not keep every unit of the
line armed); the heartbeat is writable while the settings are locked.

Allocation: every buffer is allocated in __init__; handle() and everything it
calls allocate nothing (checked under micropython.heap_lock() in the tests).
"""

from array import array

from micropython import const

import regbank
from regmap import CMD_BASE, COIL, HOLDING, HR_HEARTBEAT, HR_LOCK, SETTINGS_BASE
from regmap import LOCK_WORD as _KEY_LOCK, UNLOCK_KEY_1 as _KEY_1, UNLOCK_KEY_2 as _KEY_2
from rtuframe import RtuFramer, crc16, silence_us  # noqa: F401  (re-exported)

_BUF = const(260)
# settings_lock (address and words from the map): reads 0 open, 1 locked by
# key, 2 by jumper; the unlock words are the map's unless the board sets its own.

# Diagnostic counters (FC08 sub-functions 0x0B.., same order).
C_BUS_MSG = const(0)
C_BUS_ERR = const(1)
C_EXCEPTION = const(2)
C_SERVER_MSG = const(3)
C_NO_RESPONSE = const(4)
C_NAK = const(5)
C_BUSY = const(6)
C_OVERRUN = const(7)


class RtuServer(RtuFramer):
    def __init__(self, bank, unit, baud, ident):
        if not 1 <= unit <= 247:
            raise ValueError("unit id %r outside 1..247" % (unit,))
        self.bank = bank
        self.unit = unit
        self._framer_init(baud)
        self.tx = bytearray(_BUF)
        self.counters = array("H", [0] * 8)  # 16-bit, wrap like the spec's
        self.frames_for_me = 0  # valid frames for this unit or broadcast
        self.write_hook = None  # called as hook(table, addr, qty) after a write
        self.jumper = None  # settings-lock input (value() 0: jumper fitted), or None
        self.key_locked = False
        self.key1 = _KEY_1
        self.key2 = _KEY_2
        self._key_stage = 0
        self._bcast = False
        self.lock_addr = HR_LOCK
        # Device identification objects, pre-encoded: id, len, bytes...
        self._ident = bytearray()
        self._ident_off = array("H", [0] * 8)
        room = _BUF - 10 - 2 * 7  # the 43/14 reply: 8 header + objects + CRC
        for i in range(7):
            self._ident_off[i] = len(self._ident)
            s = ident[i].encode() if i < len(ident) else b""
            s = s[:max(0, room)]  # never past the reply buffer (fwconfig limits model)
            room -= len(s)
            self._ident.append(i)
            self._ident.append(len(s))
            self._ident.extend(s)
        self._ident_off[7] = len(self._ident)

    def _inc(self, i):
        self.counters[i] = (self.counters[i] + 1) & 0xFFFF

    # ---- one complete frame in self.rx[:n] -> reply in self.tx ---------------
    def handle(self, n):
        c = self.counters
        rx = self.rx
        if n < 4:
            self._inc(C_BUS_ERR)
            return 0
        if crc16(rx, n - 2) != (rx[n - 2] | (rx[n - 1] << 8)):
            self._inc(C_BUS_ERR)
            return 0
        self._inc(C_BUS_MSG)
        unit = rx[0]
        if unit != self.unit and unit != 0:
            return 0
        self._inc(C_SERVER_MSG)
        self.frames_for_me += 1
        fc = rx[1]
        if unit == 0:
            # Broadcast: writes only, never a reply, never a safety setting.
            self._inc(C_NO_RESPONSE)
            if fc == 5 or fc == 6 or fc == 15 or fc == 16:
                self._bcast = True
                self._dispatch(fc, n)
                self._bcast = False
            return 0
        r = self._dispatch(fc, n)
        if r < 0:
            return self._exception(fc, -r)
        return r

    def _dispatch(self, fc, n):
        if fc == 3:
            return self._read_regs(n, self.bank.hr, self.bank.hr_kind)
        if fc == 4:
            return self._read_regs(n, self.bank.ir, self.bank.ir_kind)
        if fc == 1:
            return self._read_bits(n, self.bank.co, self.bank.co_kind)
        if fc == 2:
            return self._read_bits(n, self.bank.di, self.bank.di_kind)
        if fc == 6:
            return self._write_reg(n)
        if fc == 16:
            return self._write_regs(n)
        if fc == 5:
            return self._write_coil(n)
        if fc == 15:
            return self._write_coils(n)
        if fc == 8:
            return self._diagnostics(n)
        if fc == 43:
            return self._ident_read(n)
        return -regbank.EX_FUNCTION

    def locked(self):
        """Settings locked: 2 by the jumper, 1 by the key register, 0 open."""
        j = self.jumper
        if j is not None and not j.value():
            return 2
        return 1 if self.key_locked else 0

    def show_lock(self):
        """settings_lock reads the lock state (the jumper may change any time)."""
        self.bank.hr[self.lock_addr] = self.locked()

    def _refused(self, addr, qty):
        """Exception for a holding write over addr..addr+qty-1, 0 if allowed:
        a safety setting (outside the command block) is never written by
        broadcast and not while locked (04: well-formed, in range, refused);
        the heartbeat alone passes the lock, never a broadcast."""
        if addr >= CMD_BASE and addr + qty <= SETTINGS_BASE:
            return 0
        if addr == HR_HEARTBEAT and qty == 1 and not self._bcast:
            return 0
        if self._bcast or self.locked():
            return regbank.EX_DEVICE
        return 0

    def _lock_write(self, v):
        """settings_lock: 1 locks; key1 then key2 (0x5AFE, 0xC0DE unless the
        board says otherwise; two FC06 writes in a row, this unit only)
        unlocks; anything else restarts the sequence."""
        if self._bcast:
            return -regbank.EX_DEVICE
        if v == _KEY_LOCK:
            self.key_locked = True
            self._key_stage = 0
        elif v == self.key1:
            self._key_stage = 1
        elif v == self.key2 and self._key_stage == 1:
            self.key_locked = False
            self._key_stage = 0
        else:
            self._key_stage = 0
            return -regbank.EX_VALUE
        self.show_lock()
        return 0

    def _u16(self, i):
        return (self.rx[i] << 8) | self.rx[i + 1]

    def _finish(self, k):
        crc = crc16(self.tx, k)
        self.tx[k] = crc & 0xFF
        self.tx[k + 1] = crc >> 8
        return k + 2

    def _exception(self, fc, code):
        self._inc(C_EXCEPTION)
        tx = self.tx
        tx[0] = self.unit
        tx[1] = (fc | 0x80) & 0xFF
        tx[2] = code
        return self._finish(3)

    def _echo(self, n):
        # Replies that repeat the first n-2 bytes of the request.
        tx, rx = self.tx, self.rx
        for i in range(n - 2):
            tx[i] = rx[i]
        return self._finish(n - 2)

    def _read_regs(self, n, regs, kind):
        if n != 8:
            return -regbank.EX_VALUE
        addr = self._u16(2)
        qty = self._u16(4)
        if qty < 1 or qty > 125:
            return -regbank.EX_VALUE
        e = self.bank.check_read(kind, addr, qty)
        if e:
            return -e
        tx = self.tx
        tx[0] = self.unit
        tx[1] = self.rx[1]
        tx[2] = 2 * qty
        k = 3
        for a in range(addr, addr + qty):
            v = regs[a]
            tx[k] = v >> 8
            tx[k + 1] = v & 0xFF
            k += 2
        return self._finish(k)

    def _read_bits(self, n, bits, kind):
        if n != 8:
            return -regbank.EX_VALUE
        addr = self._u16(2)
        qty = self._u16(4)
        if qty < 1 or qty > 2000:
            return -regbank.EX_VALUE
        e = self.bank.check_read(kind, addr, qty)
        if e:
            return -e
        tx = self.tx
        nbytes = (qty + 7) >> 3
        tx[0] = self.unit
        tx[1] = self.rx[1]
        tx[2] = nbytes
        for i in range(nbytes):
            tx[3 + i] = 0
        for i in range(qty):
            if bits[addr + i]:
                tx[3 + (i >> 3)] |= 1 << (i & 7)
        return self._finish(3 + nbytes)

    def _notify(self, table, addr, qty):
        hook = self.write_hook
        if hook is not None:
            try:
                hook(table, addr, qty)
            except Exception:  # a failing output driver is a device failure
                return -regbank.EX_DEVICE
        return 0

    def _write_reg(self, n):
        if n != 8:
            return -regbank.EX_VALUE
        addr = self._u16(2)
        bank = self.bank
        if addr >= bank.n_hr or bank.hr_kind[addr] != regbank.K_RW1:
            return -regbank.EX_ADDRESS
        if addr == self.lock_addr:
            e = self._lock_write(self._u16(4))
            return e if e else self._echo(n)
        e = self._refused(addr, 1)
        if e:
            return -e
        e = bank.check_hr_write(addr, 1, self.rx, 4)
        if e:
            return -e
        bank.hr[addr] = self._u16(4)
        e = self._notify(HOLDING, addr, 1)
        if e:
            return e
        return self._echo(n)

    def _write_regs(self, n):
        if n < 9:
            return -regbank.EX_VALUE
        addr = self._u16(2)
        qty = self._u16(4)
        bc = self.rx[6]
        if qty < 1 or qty > 123 or bc != 2 * qty or n != 9 + bc:
            return -regbank.EX_VALUE
        bank = self.bank
        if addr <= self.lock_addr < addr + qty:
            return -regbank.EX_ADDRESS  # the lock takes single writes (FC06) only
        e = self._refused(addr, qty)
        if e:
            return -e
        e = bank.check_hr_write(addr, qty, self.rx, 7)
        if e:
            return -e
        hr = bank.hr
        for i in range(qty):
            hr[addr + i] = self._u16(7 + 2 * i)
        e = self._notify(HOLDING, addr, qty)
        if e:
            return e
        return self._echo(8)

    def _write_coil(self, n):
        if n != 8:
            return -regbank.EX_VALUE
        addr = self._u16(2)
        v = self._u16(4)
        if v != 0xFF00 and v != 0:
            return -regbank.EX_VALUE
        e = self.bank.check_coil_write(addr, 1)
        if e:
            return -e
        self.bank.co[addr] = 1 if v else 0
        e = self._notify(COIL, addr, 1)
        if e:
            return e
        return self._echo(n)

    def _write_coils(self, n):
        if n < 9:
            return -regbank.EX_VALUE
        addr = self._u16(2)
        qty = self._u16(4)
        bc = self.rx[6]
        if qty < 1 or qty > 1968 or bc != (qty + 7) >> 3 or n != 9 + bc:
            return -regbank.EX_VALUE
        e = self.bank.check_coil_write(addr, qty)
        if e:
            return -e
        co = self.bank.co
        rx = self.rx
        for i in range(qty):
            co[addr + i] = (rx[7 + (i >> 3)] >> (i & 7)) & 1
        e = self._notify(COIL, addr, qty)
        if e:
            return e
        return self._echo(8)

    def _diagnostics(self, n):
        if n < 8:
            return -regbank.EX_VALUE
        sub = self._u16(2)
        if sub == 0:
            return self._echo(n)
        if n != 8:
            return -regbank.EX_VALUE
        c = self.counters
        if sub == 0x0A:
            if self._u16(4) != 0:
                return -regbank.EX_VALUE
            for i in range(8):
                c[i] = 0
            return self._echo(n)
        if 0x0B <= sub <= 0x12:
            if self._u16(4) != 0:
                return -regbank.EX_VALUE
            if sub <= 0x0F:
                v = c[sub - 0x0B]
            elif sub == 0x10:
                v = c[C_NAK]
            elif sub == 0x11:
                v = c[C_BUSY]
            else:
                v = c[C_OVERRUN]
            tx = self.tx
            for i in range(4):
                tx[i] = self.rx[i]
            tx[4] = (v >> 8) & 0xFF
            tx[5] = v & 0xFF
            return self._finish(6)
        return -regbank.EX_FUNCTION

    def _ident_read(self, n):
        # 43 / 14: Read Device Identification (conformity 0x82: basic+regular,
        # stream and individual access). No extended objects: code 03 returns
        # the regular ones.
        if n != 7:
            return -regbank.EX_VALUE
        if self.rx[2] != 0x0E:
            return -regbank.EX_FUNCTION
        code = self.rx[3]
        obj = self.rx[4]
        if code < 1 or code > 4:
            return -regbank.EX_VALUE
        if code == 4:
            if obj > 6:
                return -regbank.EX_ADDRESS
            first = obj
            last = obj
        else:
            last = 2 if code == 1 else 6
            first = obj if obj <= last else 0
        tx = self.tx
        tx[0] = self.unit
        tx[1] = 43
        tx[2] = 0x0E
        tx[3] = code
        tx[4] = 0x82
        tx[5] = 0  # more follows
        tx[6] = 0  # next object id
        tx[7] = last - first + 1
        k = 8
        src = self._ident
        for i in range(self._ident_off[first], self._ident_off[last + 1]):
            tx[k] = src[i]
            k += 1
        return self._finish(k)
