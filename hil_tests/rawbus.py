"""A raw RTU master on a tty: sends exact bytes, returns exact bytes.

For conformance tests, the fuzzer and the bench: pymodbus and minimalmodbus
refuse to send malformed frames, and hide timing. Reads end on a silence
(default 5 ms, well above the 1.75 ms frame gap) or on the deadline.
"""

import os
import select
import termios
import time
import tty

from cython_ext.modbus_frame import check, crc16, frame  # noqa: F401  (re-exported)


class RawPort:
    def __init__(self, path):
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as e:
            raise ValueError("cannot open %s: %s" % (path, e))
        self.own = True
        tty.setraw(self.fd)
        termios.tcflush(self.fd, termios.TCIOFLUSH)

    @classmethod
    def from_fd(cls, fd, own=False):
        """A raw master on an open descriptor, as it is (e.g. a pty's master
        side: its termios are the slave's, which the device has set);
        close() closes it only if own."""
        port = cls.__new__(cls)
        port.fd = fd
        port.own = own
        return port

    def send(self, data):
        view = memoryview(bytes(data))
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                select.select([], [self.fd], [], 0.1)
                continue
            view = view[n:]
        return time.perf_counter()

    def read_frame(self, timeout=0.1, silence=0.005):
        """Bytes until `silence` without a byte, or b"" if nothing by `timeout`."""
        out = bytearray()
        deadline = time.perf_counter() + timeout
        t_first = None
        while True:
            now = time.perf_counter()
            wait = (silence if out else deadline - now)
            if wait <= 0:
                break
            r, _, _ = select.select([self.fd], [], [], wait)
            if not r:
                if out:
                    break
                continue
            try:
                chunk = os.read(self.fd, 512)
            except BlockingIOError:
                continue
            if t_first is None:
                t_first = time.perf_counter()
            out += chunk
        self.t_first = t_first
        return bytes(out)

    def drain(self, quiet=0.01):
        while self.read_frame(timeout=quiet, silence=quiet):
            pass

    def transact(self, data, timeout=0.1):
        self.send(data)
        return self.read_frame(timeout)

    def close(self):
        if self.own:
            os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def spec_client(port, baud=115200, **kw):
    """pymodbus' sync serial client, made to keep the 3.5-character silence
    before each request (serial line spec 2.5.1.1): pymodbus sends the next
    request as soon as a reply is in, and on a multi-drop line another device
    can then take the reply and the request for one (bad) frame."""
    from pymodbus.client import ModbusSerialClient

    class SpecSerialClient(ModbusSerialClient):
        _t_rx = 0.0

        def recv(self, size):
            data = super().recv(size)
            if data:
                self._t_rx = time.perf_counter()
            return data

        def send(self, request, addr=None):
            wait = self._t_rx + 0.00175 - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            return super().send(request, addr)

    return SpecSerialClient(port, baudrate=baud, **kw)
