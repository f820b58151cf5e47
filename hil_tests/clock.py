"""The bench's plant clock: plant time = (wall - epoch) x speedup, so a plant
hour passes in a minute at 60x while the Modbus traffic stays real time.
Negative before the epoch: the plant has not started yet (the service waits)."""

import time


class ScaledClock:
    def __init__(self, speedup, epoch):
        if not speedup > 0:
            raise ValueError("clock speedup must be > 0, got %r" % (speedup,))
        self.speedup, self.epoch = float(speedup), float(epoch)

    def plant_s(self):
        return (time.time() - self.epoch) * self.speedup
