"""Energy counter persistence: written in steps so flash is not worn out and a
power cut loses at most one step.

The file holds one line: "<wh> <crc>"; it is written to a temporary name and
renamed, so a cut during the write leaves the previous value. A missing or
corrupt file starts from 0 and says so (ST_CONFIG_ERROR is not set for this:
a fresh board has no file).
"""

import os


def _crc(s):
    c = 0
    for ch in s:
        c = (c * 31 + ord(ch)) & 0xFFFF
    return c


class EnergyStore:
    def __init__(self, path, step_wh=1000):
        if step_wh < 1:
            raise ValueError("step_wh %r < 1" % (step_wh,))
        self.path = path
        self.step = int(step_wh)
        self.saved = self.load()
        self.writes = 0

    def load(self):
        try:
            with open(self.path) as f:
                wh_s, crc_s = f.read().split()
            if _crc(wh_s) != int(crc_s):
                raise ValueError("crc")
            return int(wh_s)
        except (OSError, ValueError):
            return 0

    def maybe_save(self, wh):
        """Save when wh has moved a whole step past the last saved value."""
        if wh - self.saved < self.step:
            return False
        tmp = self.path + ".tmp"
        s = str(wh)
        with open(tmp, "w") as f:
            f.write("%s %d\n" % (s, _crc(s)))
        os.rename(tmp, self.path)
        self.saved = wh
        self.writes += 1
        return True
