"""Seeded fuzz: 10,000 random and malformed bursts at a firmware device.

Each burst is one write followed by a silence well above 3.5 characters, so the
device sees it as one frame. The test predicts from the bytes alone which bursts
are valid frames (CRC), which are for this unit, and which exceed the receive
buffer, then checks the device's diagnostic counters add up exactly and that it
still answers correctly. Every reply the device sends is checked too: it must
be a well-formed frame for this unit, for a burst that was addressed to it.
"""

import random
import time

import pytest

from hil_tests.devices import DeviceProcess
from hil_tests.rawbus import RawPort, check, crc16, frame
from hil_tests.vline import VirtualLine

UNIT = 5
N_BURSTS = 10_000
RX_BUF = 260  # firmware/modbus_rtu.py _BUF
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


def _predict(b):
    """(valid frame, for this unit or broadcast, answered) for one burst."""
    if len(b) > RX_BUF or len(b) < 4 or not check(b):
        return False, False, False
    for_me = b[0] in (UNIT, 0)
    return True, for_me, b[0] == UNIT


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
        valid = errors = server = answered = exc_replies = 0
        for _ in range(N_BURSTS):
            b = _burst(rng)
            ok, for_me, answer = _predict(b)
            port.send(b)
            if answer:
                reply = port.read_frame(timeout=0.2, silence=0.003)
                assert reply, "no reply to %s" % b.hex()
                assert check(reply) and reply[0] == UNIT, reply.hex()
                assert reply[1] in (b[1], b[1] | 0x80), (b.hex(), reply.hex())
                if reply[1] & 0x80:
                    exc_replies += 1
                    assert reply[2] in (1, 2, 3, 4) and len(reply) == 5
                answered += 1
            else:
                assert port.read_frame(timeout=GAP_S, silence=0.002) == b"", b.hex()
            valid += ok
            errors += not ok
            server += for_me
            # A fuzz frame may clear the counters (FC08/0A); restart the tally then.
            if answer and b[1] == 8 and b[2:4] == b"\x00\x0a" and len(b) == 8 \
                    and b[4:6] == b"\x00\x00":
                valid = errors = server = exc_replies = 0
        assert dev.alive()

        def count(sub):
            r = port.transact(frame(UNIT, bytes([8, 0, sub, 0, 0])))
            assert check(r), r.hex()
            return int.from_bytes(r[4:6], "big")

        # Each counter read is itself one more valid frame for this unit.
        assert count(0x0B) == valid + 1
        assert count(0x0C) == errors
        assert count(0x0D) == exc_replies
        assert count(0x0E) == server + 4
    assert answered > 2000
    # Still correct after the storm: identity and a plain read.
    with RawPort(line.ports[0]) as port:
        r = port.transact(frame(UNIT, b"\x04\x00\x00\x00\x03"))
        assert r == frame(UNIT, b"\x04\x06\x00\x01\x00\x03\x01\x00")
