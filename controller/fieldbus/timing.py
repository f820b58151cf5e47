"""Serial-line timing from first principles (Modbus over serial line V1.02, 2.5.1).

A character is 11 bits on the wire in the standard formats (1 start, 8 data,
parity or a second stop bit, 1 stop). Frames are separated by 3.5 characters of
silence, fixed at 1.75 ms above 19200 baud. The physical limit of a line is
what a master could reach if every request and reply followed each other with
no more than these silences and the device answered at once: utilisation is
measured against it.
"""

import math


def bits_per_char(parity="E", stopbits=1, bytesize=8):
    return 1 + bytesize + (0 if parity == "N" else 1) + stopbits


def char_s(baud, bits=11):
    return bits / float(baud)


def silence_s(baud, bits=11):
    """The 3.5-character inter-frame gap (t3.5)."""
    return 0.00175 if baud > 19200 else 3.5 * char_s(baud, bits)


def frame_s(nbytes, baud, bits=11):
    return nbytes * char_s(baud, bits)


def request_bytes(fc, count):
    """RTU request length (address, function, data, CRC)."""
    if fc in (1, 2, 3, 4):
        return 8
    if fc in (5, 6):
        return 8
    if fc == 15:
        return 9 + (count + 7) // 8
    if fc == 16:
        return 9 + 2 * count
    raise ValueError("no frame size for function %d" % fc)


def reply_bytes(fc, count):
    if fc in (1, 2):
        return 5 + (count + 7) // 8
    if fc in (3, 4):
        return 5 + 2 * count
    if fc in (5, 6, 15, 16):
        return 8
    raise ValueError("no frame size for function %d" % fc)


def transaction_s(fc, count, baud, bits=11):
    """Least line time of one transaction: request, gap, reply, gap."""
    n = request_bytes(fc, count) + reply_bytes(fc, count)
    return frame_s(n, baud, bits) + 2 * silence_s(baud, bits)


def timeout_s(fc, count, baud, bits=11, turnaround_s=0.005, margin=2.0):
    """Reply timeout: the transaction's wire time plus the device's turnaround,
    times a margin for host scheduling; never below 20 ms (an OS tick or two)."""
    t = transaction_s(fc, count, baud, bits) + turnaround_s
    return max(0.02, math.ceil(t * margin * 1000.0) / 1000.0)
