"""What the tests that run edge services on their own event loop share: a
wait for a condition that lets the services run meanwhile, and the fake
line's physics stepped in plant time."""

import asyncio
import time


async def until(cond, what, timeout_s=40.0, poll_s=0.05):
    """Wait (asynchronously) until cond() is true; AssertionError(what) after timeout_s."""
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        if cond():
            return
        await asyncio.sleep(poll_s)
    raise AssertionError(what)


async def physics(buses, speedup, tick_s=0.05):
    """Step every FakeBus in buses by tick_s of wall time at speedup, for ever
    (cancel the task to stop it)."""
    while True:
        for bus in buses:
            bus.advance(tick_s * speedup)
        await asyncio.sleep(tick_s)
