"""The line's statistics count what reached the host (bench/run.py line reports
them as registers/s and bits/s): registers and bits apart, and nothing for a
read the device refused or answered short (they counted the asked-for count,
bits as registers, before)."""

import asyncio

from controller.fieldbus.device import Device
from controller.fieldbus.master import Line
from hil_tests.fakeline import FakeBus, FakeDevice


def _two_rounds(fake, fault=None):
    """A probe round (the device comes up), then fault is set on the fake device
    and a full round runs (fast, status and slow blocks); its statistics."""
    dev = Device("m1", 1, "motor")
    line = Line("l", "tcp", [dev], host="fake", client_factory=FakeBus([fake]).client)

    async def go():
        await line.open()
        await line.round()
        assert dev.up
        if fault:
            setattr(fake, fault, True)
        line.stats.reset()
        await line.round()
    asyncio.run(go())
    return dev, line.stats


def _words(dev, fcs):
    return sum(r.count for r in dev.reads if r.fc in fcs)


def test_registers_and_bits_are_counted_apart():
    dev, st = _two_rounds(FakeDevice("motor", 1))
    assert st.regs == _words(dev, (3, 4)) > 0
    assert st.bits == _words(dev, (1, 2)) > 0


def test_a_refused_read_delivers_nothing():
    # exception 2 to every holding-register read
    dev, st = _two_rounds(FakeDevice("motor", 1), "refuse_reads")
    assert st.exceptions == len([r for r in dev.reads if r.fc == 3]) > 0
    assert st.regs == _words(dev, (4,))


def test_a_short_reply_delivers_nothing():
    dev, st = _two_rounds(FakeDevice("motor", 1), "short_replies")
    assert st.garbled == len(dev.reads) and st.regs == 0 and st.bits == 0
