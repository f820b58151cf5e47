"""Host side of the plant link (firmware/plantlink.py): plant values -> a device's
inputs, the device's driven outputs -> plant actuators.

Values travel as the register words of the profile (firmware/regmap.py), so the
firmware serves them exactly as it would serve its own measurements. Points
wired as 4-20 mA transmitters also carry their loop current: a NaN from the
plant (no signal) is a broken loop at 0 mA, and the firmware's NE43
classification marks it bad; a reading beyond the transmitter's span shows as
NE43 over-range (uncertain). A NaN on a point without a loop (a meter, a
counter) is sent as quality bad. Spans are the instruments'
(hil_tests/plants/instruments.py), so a transmitter at the top of its span
reaches the firmware at 20 mA. Outputs' feedback points are the firmware's own
and are never sent. Metering points are the firmware's metering task's on a
board; over the link they carry the plant's electrical values.
"""

import math
import socket
import struct

from controller.fieldbus.planner import quality_index
from controller.registers import point_map
from firmware import regmap
from firmware.codec import Q_BAD
from hil_tests.plants.instruments import is_loop, span


class DeviceLink:
    """udp_port: the device's UDP link (unix port); tty: a serial link instead
    (a board in sim-input mode, or `--link-tty` on the unix port)."""

    def __init__(self, profile, udp_port=None, host="127.0.0.1", tty=None):
        self.profile = profile
        self.addr = (host, udp_port)
        self.serial = None
        if tty is not None:
            import serial
            try:
                self.serial = serial.Serial(tty, 115200, timeout=0)
            except (OSError, ValueError) as e:
                raise ValueError("plant link: cannot open %s (%s)" % (tty, e))
            self._rx = bytearray()
        self.pts = point_map(profile)
        self.qidx = quality_index(profile)
        self.outputs = regmap.outputs(profile)
        self.feedback = {fb for _, _, fb in self.outputs}
        metering = {p[regmap.F_NAME] for p in regmap.metering_points()}
        self.loop = {p.name for p in self.pts.values()
                     if p.table == regmap.INPUT and p.address >= regmap.MEAS_BASE and p.count == 1
                     and p.name not in metering and p.name not in self.feedback
                     and is_loop(p)}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sent = 0
        self.replies = 0
        self.last = None  # (commands, interlocks, status)

    def ma(self, name, v):
        """Loop current for a transmitter reading (NaN: broken loop)."""
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return 0.0
        lo, hi = span(self.profile, name)
        return min(22.0, max(3.0, 4.0 + 16.0 * (v - lo) / (hi - lo)))

    def datagram(self, meas, extra_quality=None):
        recs = []
        for name, v in meas.items():
            p = self.pts.get(name)
            if p is None or name in self.feedback or p.access == "rw" or p.count != 1:
                continue
            slot = self.qidx.get(name, 255)
            if p.table == regmap.DISCRETE:
                recs.append(struct.pack(">BBHH", 1, 255, p.address, 1 if v else 0))
                continue
            if p.table != regmap.INPUT:
                continue
            nan = isinstance(v, float) and math.isnan(v)
            if name in self.loop:
                recs.append(struct.pack(">BBHH", 2, slot, p.address,
                                        int(round(self.ma(name, v) * 1000))))
            if nan:
                if name not in self.loop and slot != 255:  # no loop current to tell
                    recs.append(struct.pack(">BBHH", 3, slot, 0, Q_BAD))
                continue
            words = _encode_clamped(p, v)
            for i, w in enumerate(words):
                recs.append(struct.pack(">BBHH", 0, slot, p.address + i, w))
        for name, q in (extra_quality or {}).items():
            recs.append(struct.pack(">BBHH", 3, self.qidx[name], 0, q))
        return b"L" + b"".join(recs)

    def send(self, meas, extra_quality=None):
        msg = self.datagram(meas, extra_quality)
        try:
            if self.serial is not None:
                self.serial.write(frame(msg))
            else:
                self.sock.sendto(msg, self.addr)
            self.sent += 1
        except OSError:
            pass  # the device is not running: the plant goes on

    def _recv_serial(self):
        self._rx += self.serial.read(4096)
        got = None
        while True:
            msg, used = unframe(self._rx)
            if used == 0:
                break
            del self._rx[:used]
            if msg is not None:
                got = msg
        return got

    def receive(self):
        """The latest reply, decoded: ({command point: value}, interlocks, status) or None."""
        got = None
        while self.serial is None:
            try:
                data = self.sock.recv(512)
            except (BlockingIOError, OSError):
                break
            got = data
        if self.serial is not None:
            got = self._recv_serial()
        if got is None:
            return None
        n = len(self.outputs)
        if len(got) != 1 + 2 * (n + 2) or got[0:1] != b"O":
            raise ValueError("plant link %s: bad reply %r" % (self.profile, got[:16]))
        raw = struct.unpack(">%dH" % (n + 2), got[1:])
        cmds = {}
        for i, (cmd, _, _) in enumerate(self.outputs):
            p = self.pts[cmd]
            cmds[cmd] = raw[i] * p.scale if p.table == regmap.HOLDING else raw[i]
        self.replies += 1
        self.last = (cmds, raw[n], raw[n + 1])
        return self.last

    def close(self):
        self.sock.close()
        if self.serial is not None:
            self.serial.close()


SYNC = 0xA5


def frame(msg):
    """A message as the serial plant link frames it (firmware/plantlink.py)."""
    from cython_ext.modbus_frame import crc16
    crc = crc16(msg)
    return bytes((SYNC, len(msg) >> 8, len(msg) & 0xFF)) + msg + bytes((crc & 0xFF, crc >> 8))


def unframe(buf):
    """(message or None, bytes used) from the start of buf; (None, 0): need more."""
    from cython_ext.modbus_frame import crc16
    if not buf:
        return None, 0
    if buf[0] != SYNC:
        return None, 1
    if len(buf) < 5:
        return None, 0
    n = (buf[1] << 8) | buf[2]
    if n > 512:
        return None, 1
    if len(buf) < n + 5:
        return None, 0
    msg = bytes(buf[3:3 + n])
    if crc16(msg) != (buf[3 + n] | (buf[4 + n] << 8)):
        return None, 1
    return msg, n + 5


def _encode_clamped(p, v):
    try:
        return regmap.encode(p.raw, v)
    except (ValueError, OverflowError):
        lo, hi = {"u16": (0, 65535), "i16": (-32768, 32767), "u32": (0, 2 ** 32 - 1),
                  "i32": (-2 ** 31, 2 ** 31 - 1)}.get(p.type, (-3e38, 3e38))
        return regmap.encode(p.raw, min(max(v, lo * p.scale), hi * p.scale))
