"""Plant link (sim HAL only): the plant simulator's side of the device's pins.

On the unix port there are no transmitters, ADC pins or relay coils: the HIL
bench stands in for them over a local UDP socket (`--link PORT`, bound on
127.0.0.1), or over a second serial link (`--link-tty PATH`; on a board in
sim-input mode, config `link_uart` {id, tx, rx, de}: the bench's plant reaches a
real board that way). Every message from the bench carries what the
instruments would put on the device's inputs; the device answers each with
what its outputs are driving now, so the plant moves with the real firmware's
ramps, clamps, interlocks and safe state.

On a serial link each message is framed: 0xA5, length (u16, big-endian),
the message, CRC-16/MODBUS of the message (low byte first); a receiver drops
bytes until a frame checks.

Bench -> device: b"L" then records of 6 bytes, big-endian:
    kind u8, slot u8, addr u16, value u16
  kind 0: input register word at addr (slot: the point's quality slot, 255 none)
  kind 1: discrete input bit at addr (value 0/1)
  kind 2: loop current of the point at addr in uA: NAMUR NE43 decides its
          quality (analog.ne43); a failed loop (wire break, short) keeps the
          last good value in the register and marks the slot bad
  kind 3: quality q (value) for slot, e.g. uncertain while an analyzer blows back
Points sent as words without a loop current are good.
Device -> bench: b"O" then u16 per output (profile OUTPUTS order, raw register
units of the command point), interlocks word, status word.
"""

import socket
from analog import ne43
from micropython import const
from codec import Q_BAD, Q_GOOD

_PERIOD_MS = const(20)
_REC = const(6)
_MAX = const(512)  # largest message (fgd: ~40 records)
_SYNC = const(0xA5)


class UdpPort:
    """Messages as datagrams on 127.0.0.1:port; replies go to the first sender."""

    def __init__(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        except OSError as e:
            raise ValueError("plant link: cannot bind UDP port %d (%s)" % (port, e))
        s.setblocking(False)
        self.sock = s
        self.peer = None  # the bench's address, learnt from its first datagram

    def recv(self, buf):
        sock = self.sock
        if self.peer is None:
            try:
                data, self.peer = sock.recvfrom(_MAX)  # once: learn the bench
            except OSError:
                return 0
            n = len(data)
            buf[:n] = data
            return n
        try:
            return sock.readinto(buf) or 0
        except OSError:
            return 0  # nothing waiting (EAGAIN)

    def send(self, data, n):
        try:
            self.sock.sendto(memoryview(data)[:n], self.peer)
        except OSError:
            pass  # the bench is gone: it will send again


class StreamPort:
    """Framed messages over a UART (or a tty on the unix port)."""

    def __init__(self, uart):
        from modbus_rtu import crc16
        self.crc16 = crc16
        self.uart = uart
        self.rx = bytearray(_MAX + 5)
        self.n = 0
        self.hdr = bytearray(3)
        self.tail = bytearray(2)

    def recv(self, buf):
        rx = self.rx
        if self.n < len(rx):
            k = self.uart.readinto(memoryview(rx)[self.n:])
            self.n += k or 0
        while self.n >= 5:
            if rx[0] != _SYNC:
                self._drop(1)
                continue
            ln = (rx[1] << 8) | rx[2]
            if ln > _MAX:
                self._drop(1)
                continue
            if self.n < ln + 5:
                return 0  # the rest is on its way
            buf[:ln] = rx[3:3 + ln]
            ok = self.crc16(buf, ln) == (rx[3 + ln] | (rx[4 + ln] << 8))
            self._drop(ln + 5 if ok else 1)
            if ok:
                return ln
        return 0

    def _drop(self, k):
        rx = self.rx
        rx[:self.n - k] = rx[k:self.n]
        self.n -= k

    def send(self, data, n):
        crc = self.crc16(data, n)
        h = self.hdr
        h[0], h[1], h[2] = _SYNC, n >> 8, n & 0xFF
        t = self.tail
        t[0], t[1] = crc & 0xFF, crc >> 8
        self.uart.write(h, 3)
        self.uart.write(data, n)
        self.uart.write(t, 2)


class PlantLink:
    def __init__(self, dev, port):
        self.dev = dev
        self.bank = dev.bank
        self.outputs = dev.outputs
        self.port = port
        self.bad = bytearray(64)     # slots whose loop failed in this datagram
        self.looped = bytearray(64)  # slots that came with a loop current
        self.buf = bytearray(_MAX)
        self.out = bytearray(1 + 2 * (dev.outputs.n + 2))
        self.frames = 0
        self.errors = 0

    def apply(self, data, n):
        """Apply one datagram of n bytes; returns False (and changes nothing) if malformed.

        Three passes over the buffer (check, loop currents, values): nothing
        is kept between datagrams and little is allocated on a small heap."""
        if n < 1 or data[0] != 0x4C or (n - 1) % _REC:  # b"L"
            self.errors += 1
            return False
        bank = self.bank
        n_ir, n_di = len(bank.ir), len(bank.di)
        for k in range(1, n, _REC):
            kind, slot, addr = data[k], data[k + 1], (data[k + 2] << 8) | data[k + 3]
            if kind > 3 or (kind in (0, 2) and addr >= n_ir) or (kind == 1 and addr >= n_di) \
                    or (slot != 255 and slot >= 64) or (kind >= 2 and slot == 255):
                self.errors += 1
                return False
        bad, looped = self.bad, self.looped
        for i in range(64):
            bad[i] = 0
            looped[i] = 0
        for k in range(1, n, _REC):
            if data[k] == 2:
                slot = data[k + 1]
                q = ne43(((data[k + 4] << 8) | data[k + 5]) / 1000.0)
                looped[slot] = 1
                bank.set_quality(slot, q)
                if q == Q_BAD:
                    bad[slot] = 1
        for k in range(1, n, _REC):
            kind, slot = data[k], data[k + 1]
            addr = (data[k + 2] << 8) | data[k + 3]
            value = (data[k + 4] << 8) | data[k + 5]
            if kind == 0:
                if slot != 255 and bad[slot]:
                    continue  # failed loop: the register keeps the last good value
                bank.ir[addr] = value
                if slot != 255 and not looped[slot]:
                    bank.set_quality(slot, Q_GOOD)
            elif kind == 1:
                bank.di[addr] = 1 if value else 0
            elif kind == 3 and not bad[slot]:
                bank.set_quality(slot, value & 3)
        self.frames += 1
        bank.samples = (bank.samples + 1) & 0x3FFF  # the inputs are live (outputs.py)
        return True

    def reply(self):
        o = self.outputs
        out = self.out
        out[0] = 0x4F  # b"O"
        for i in range(o.n):
            v = o.actual[i] & 0xFFFF
            out[1 + 2 * i] = v >> 8
            out[2 + 2 * i] = v & 0xFF
        k = 1 + 2 * o.n
        il, st = o.interlocks, self.bank.ir[3]
        out[k], out[k + 1], out[k + 2], out[k + 3] = il >> 8, il & 0xFF, st >> 8, st & 0xFF
        return out

    def step(self, now_ms):
        """A job of the device's main loop: apply every waiting message, answer each."""
        port = self.port
        buf = self.buf
        while True:
            n = port.recv(buf)
            if not n:
                break
            if self.apply(buf, n):
                port.send(self.reply(), len(self.out))


def start(dev, hal=None):
    """Attach the link task (main.py, after boot): UDP (--link), a tty
    (--link-tty) or a board's second UART (link_uart)."""
    cfg = dev.cfg
    if cfg.get("link"):
        port = UdpPort(cfg["link"])
    elif cfg.get("link_tty"):
        from hal.sim import Uart
        port = StreamPort(Uart(cfg["link_tty"], 115200))
    elif cfg.get("link_uart"):
        u = cfg["link_uart"]
        port = StreamPort(hal.Uart(u["id"], u["tx"], u["rx"], u["de"], 115200, None))
    else:
        return
    dev.add_job(PlantLink(dev, port).step, _PERIOD_MS)
