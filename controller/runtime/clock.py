"""Plant time for the runtime: injected, so the HIL bench can run a plant
faster than real time (its ScaledClock lives in hil_tests/clock.py) and tests
can step it by hand.

A clock has plant_s() (seconds of plant time; Unix time on a plant) and
speedup (plant seconds per wall second: periods in plant time become
period / speedup of wall time).
"""

import time


class WallClock:
    speedup = 1.0

    def plant_s(self):
        return time.time()
