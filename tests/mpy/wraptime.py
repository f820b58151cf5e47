"""A stand-in for the `time` module with a 32-bit board's ticks: ticks_ms wraps
at 2^30 ms (12.4 days) and ticks_diff is exact only within +-2^29 ms, as on
RP2040/ESP32/STM32. The unix port's own ticks never wrap in a test's lifetime.

Install before importing firmware modules: sys.modules["time"] = wraptime.
The clock is set by the test (advance()), nothing sleeps.
"""

_PERIOD = 1 << 30
_HALF = 1 << 29
now_ms = [0]  # absolute simulated ms since the test's epoch (never wraps)
sub_us = [0]  # and the microseconds within it


def advance(ms):
    now_ms[0] += ms


def advance_us(us):
    t = sub_us[0] + us
    now_ms[0] += t // 1000
    sub_us[0] = t % 1000


def ticks_ms():
    return now_ms[0] & (_PERIOD - 1)


def ticks_us():
    return (now_ms[0] * 1000 + sub_us[0]) & (_PERIOD - 1)


def ticks_add(t, d):
    return (t + d) & (_PERIOD - 1)


def ticks_diff(a, b):
    return ((a - b + _HALF) & (_PERIOD - 1)) - _HALF


def sleep_us(us):
    advance_us(us)


def sleep_ms(ms):
    advance(ms)
