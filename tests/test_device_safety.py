"""Device-side safety (issue 14 items 2, 3, 6 and 10 on the device): the SCR
NH3 ceiling, the compressor's lost pressure, the host heartbeat and the
configurable settings key, on the real MicroPython VM (tests/mpy/), plus the
NH3 ceiling's integer arithmetic checked for 31-bit small ints in CPython (the
unix port's small ints are 63-bit, so it cannot show an overflow into a heap-
allocated long that a 32-bit board would make)."""

import sys
import types
from pathlib import Path

import pytest

from tests.test_firmware_unix import run_mpy

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SMALL = 1 << 30  # MicroPython small ints on 32-bit ports: -2^30 .. 2^30 - 1


@pytest.mark.parametrize("script", ["test_nh3_ceiling.py", "test_pressure_lost.py",
                                    "test_heartbeat.py"])
def test_device_safety_on_unix_port(script):
    r = run_mpy(HERE / "mpy" / script, heap="2M")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout
    assert r.stdout.strip().endswith("ALL OK")


class Small(int):
    """An int that fails the test when any result leaves the 31-bit small-int range."""

    def _wrap(op):
        def f(self, *a):
            r = getattr(int, op)(self, *a)
            if r is NotImplemented:
                return r
            assert -SMALL <= r < SMALL, "%s(%d, %s) = %d needs a big int" % (op, self, a, r)
            return Small(r)
        return f

    for _op in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
                "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__lshift__",
                "__rshift__", "__or__", "__ror__", "__and__", "__rand__", "__neg__"):
        locals()[_op] = _wrap(_op)
    del _op, _wrap


@pytest.fixture(scope="module")
def interlock_scr():
    sys.modules.setdefault("micropython", types.SimpleNamespace(const=lambda x: x))
    sys.path.insert(0, str(ROOT / "firmware"))
    try:
        import interlock_scr
        yield interlock_scr
    finally:
        sys.path.remove(str(ROOT / "firmware"))


def fake(mod, fh, fl, nox, ratio, qmax):
    """A ScrInterlock over registers holding Small ints (raw register values)."""
    il = mod.ScrInterlock.__new__(mod.ScrInterlock)
    il.a = list(range(10))
    ir = [Small(0)] * 12
    hr = [Small(0)] * 12
    ir[1], ir[2], ir[3] = Small(fh), Small(fl), Small(nox)
    hr[7], hr[8] = Small(qmax), Small(ratio)
    il.out = types.SimpleNamespace(bank=types.SimpleNamespace(ir=ir, hr=hr))
    return il


FLOWS = [(0, 0), (0, 65535), (30, 33920), (61, 2304), (127, 65535), (128, 0), (65535, 65535)]


@pytest.mark.parametrize("fh,fl", FLOWS)
@pytest.mark.parametrize("nox", [0, 1, 500, 3000, 30000, 65535])
@pytest.mark.parametrize("ratio", [50, 120, 200])
def test_nh3_ceiling_fits_small_ints_and_errs_low(interlock_scr, fh, fl, nox, ratio):
    """Every register value (flow u32, NOx u16, ratio 0.5-2.0): no product
    needs a big int, and the ceiling is the formula's, floored (never above)."""
    for qmax in (0, 40000, 65535):
        got = fake(interlock_scr, fh, fl, nox, ratio, qmax).ceiling()
        flow = min((fh << 16) | fl, 0x7FFFFF)  # saturated at 8.39e6 Nm3/h (errs low)
        kgh = ratio / 100 * nox / 10 * flow * 1e-6 * 17.03 / 46.01
        want = min(qmax, kgh * 100)  # raw 0.01 kg/h
        assert want - 1.5 <= got <= want + 1e-9, (fh, fl, nox, ratio, qmax, got, want)


def test_nh3_limit_steps_fit_small_ints(interlock_scr):
    """The limit's cut and rise at their extremes (valve at 100 %, the NH3
    register at 65535, the slowest and fastest valve rates, long updates)."""
    mod = interlock_scr
    for q, fh, nox, rate, dt in ((65535, 0, 1, 10, 10**6), (1, 61, 65535, 60000, 10**6),
                                 (65535, 128, 65535, 60000, 50), (0, 128, 65535, 60000, 10**6)):
        il = fake(mod, fh, 0, nox, 200, 65535)
        bank = il.out.bank
        bank.ir[0], bank.hr[4], bank.hr[5] = Small(5000), Small(0), Small(0)  # hot, flow ok
        bank.ir[2] = Small(q)
        bank.hr[9] = Small(rate)
        il.out.actual = [Small(10000), Small(1)]
        il.out.interlocks = Small(0)
        il.out.bank.get_quality = lambda slot: 0
        il.slots = [0, 1, 2, 3]
        il.limit, il.over_ms, il.shut, il.stale = Small(mod._OPEN), Small(0), False, False
        for _ in range(3):
            il.check(Small(dt), False)
            il.limit = Small(min(il.limit, 10000))  # as after a cut or a rise


def test_board_settings_key_is_validated():
    sys.path.insert(0, str(ROOT / "firmware"))
    try:
        import fwconfig
    finally:
        sys.path.remove(str(ROOT / "firmware"))
    base = {"profile": "scr", "unit": 1, "port": "/dev/null"}
    assert fwconfig.validate(dict(base, settings_key=[0x1234, 0x4321]))["settings_key"] == [
        0x1234, 0x4321]
    for bad in ([1, 0x4321], [0x1234, 0x1234], [0x1234], [0x1234, 70000], "0x1234"):
        with pytest.raises(ValueError, match="settings_key"):
            fwconfig.validate(dict(base, settings_key=bad))
    with pytest.raises(ValueError, match="settings.host_heartbeat: not a writable setting"):
        fwconfig.validate(dict(base, settings={"host_heartbeat": 3}))
    assert fwconfig.from_argv(["--profile", "scr", "--unit", "1", "--port", "/dev/null",
                               "--settings-key", "0x1234,0x4321"])["settings_key"] == [
        0x1234, 0x4321]
