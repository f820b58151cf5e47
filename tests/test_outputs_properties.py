"""Ramps and clamps of the firmware outputs hold on any command sequence
(hypothesis drives the real module on the MicroPython unix port)."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from controller import mpvm

SERVER = Path(__file__).resolve().parent / "mpy" / "outputs_server.py"


@pytest.fixture(scope="module")
def vm():
    build = mpvm.unix_build()
    p = subprocess.Popen(mpvm.find_micropython() + ["-X", "heapsize=1M", str(SERVER)],
                         env=dict(os.environ, MICROPYPATH="%s:.frozen" % build),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    yield p
    p.kill()
    p.wait()


def allowed(target, s):
    """Where the device should put a target: out of the band, then the clamps."""
    lo, hi = s["skip"]
    if lo < target < hi:
        target = lo if target - lo < hi - target else hi
    if target:
        target = min(max(target, s["min"]), s["max"])
    return target


def drive(vm, settings_, steps):
    vm.stdin.write(json.dumps({"settings": settings_, "steps": steps}) + "\n")
    vm.stdin.flush()
    line = vm.stdout.readline()
    assert line, "outputs server died"
    return json.loads(line)


@st.composite
def setup(draw):
    lo = draw(st.integers(0, 4000))
    hi = draw(st.integers(lo, 10000))
    skip_lo = draw(st.integers(0, 9000))
    skip_hi = draw(st.integers(skip_lo, min(10000, skip_lo + 2000)))
    return {"ramp": draw(st.integers(10, 10000)), "min": lo, "max": hi, "skip": [skip_lo, skip_hi]}


@settings(max_examples=150, deadline=None)
@given(setup(), st.lists(st.tuples(st.integers(1, 2000), st.integers(0, 10000), st.integers(0, 1)),
                         min_size=1, max_size=40))
def test_ramp_and_clamps_hold(vm, s, steps):
    steps = [list(x) for x in steps]
    got = drive(vm, s, steps)
    # Boot: disarmed, the safe speed (50 %) applied at once, then every move is ramped.
    prev = allowed(5000, s)
    lo, hi = s["skip"]
    for (dt, speed, arm), a in zip(steps, got):
        assert abs(a - prev) <= s["ramp"] * dt // 1000 + 1, (a, prev, dt)  # +1: carried remainder
        assert a <= s["max"] or a < prev, (a, s)  # never climbs above the maximum
        prev = a
    # Hold the last command long enough: the output settles on an allowed value.
    dt, speed, arm = steps[-1]
    settle = drive(vm, s, steps + [[50, speed, arm]] * 20 + [[20000, speed, arm]] * 60)[-1]
    assert settle == allowed(speed if arm else 5000, s)
    assert not (lo < settle < hi) or settle in (s["min"], s["max"])  # only a limit can sit in the band
