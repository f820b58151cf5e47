# cython: language_level=3
"""Modbus RTU framing on the host: CRC-16 and frame building/checking.

Used by the fuzzer and the raw-frame clients of the bench, which build and check
hundreds of thousands of frames. Layers: a nogil CRC over a byte pointer, thin
Python wrappers that accept any bytes-like object.
"""

cimport cython
from libc.stdint cimport uint8_t, uint16_t

cdef uint16_t _TABLE[256]


cdef void _init_table() noexcept:
    cdef int i, j
    cdef uint16_t c
    for i in range(256):
        c = i
        for j in range(8):
            if c & 1:
                c = (c >> 1) ^ 0xA001
            else:
                c = c >> 1
        _TABLE[i] = c


_init_table()


@cython.boundscheck(False)
@cython.wraparound(False)
cdef uint16_t _crc16(const uint8_t[::1] buf, Py_ssize_t n) noexcept nogil:
    cdef uint16_t crc = 0xFFFF
    cdef Py_ssize_t i
    for i in range(n):
        crc = (crc >> 8) ^ _TABLE[(crc ^ buf[i]) & 0xFF]
    return crc


def crc16(data):
    """CRC-16/MODBUS of a bytes-like object (the low byte goes first on the wire)."""
    cdef const uint8_t[::1] mv = memoryview(data).cast("B")
    return _crc16(mv, mv.shape[0])


def frame(int unit, pdu):
    """unit + pdu + CRC, as bytes."""
    if not 0 <= unit <= 255:
        raise ValueError("unit id %r outside 0..255" % unit)
    body = bytes([unit]) + bytes(pdu)
    c = crc16(body)
    return body + bytes([c & 0xFF, c >> 8])


def check(data):
    """True if the last two bytes are the CRC of the rest."""
    if len(data) < 3:
        return False
    b = bytes(data)
    c = crc16(b[:-2])
    return b[-2] == (c & 0xFF) and b[-1] == (c >> 8)
