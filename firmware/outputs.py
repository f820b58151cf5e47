"""Outputs: what the device drives, decided on the device.

Each output of the profile (regmap.OUTPUTS) follows the host's command while the
device is armed, and its safe value (or holds its last value, per
safe_hold_mask) while disarmed: at boot, after a comm-loss trip, and whenever the
host writes arm = 0. The driven value is written to the output's feedback point
and handed to the HAL's driver (a pin, a DAC, the sim plant link).

Values are raw register units (0.01 % for positions and speeds, 0/1 for run and
load commands), so this runs with integers only.
"""

from array import array

import regmap

_ARM = 0
_HOLD_MASK = 2


class Outputs:
    def __init__(self, bank, profile, driver=None):
        self.bank = bank
        self.driver = driver  # driver(index, raw) or None
        outs = regmap.outputs(profile)
        self.n = len(outs)
        self.cmd_table = []
        self.cmd_addr = array("H", [0] * self.n)
        self.safe_addr = array("H", [0] * self.n)
        self.fb_table = []
        self.fb_addr = array("H", [0] * self.n)
        names = []
        for o in outs:
            names.extend(o)
        found = bank.lookup(names)
        for i in range(self.n):
            cmd, safe, fb = found[3 * i], found[3 * i + 1], found[3 * i + 2]
            self.cmd_table.append(cmd[0] == regmap.COIL)
            self.cmd_addr[i] = cmd[1]
            self.safe_addr[i] = safe[1]
            self.fb_table.append(fb[0] == regmap.DISCRETE)
            self.fb_addr[i] = fb[1]
        self.actual = array("i", [0] * self.n)
        self.safe_state = True
        self.update()

    def armed(self):
        return self.bank.hr[_ARM] == 1

    def update(self):
        """Decide and drive every output once; returns True in safe state."""
        bank = self.bank
        armed = self.armed()
        hold = bank.hr[_HOLD_MASK]
        for i in range(self.n):
            if armed:
                if self.cmd_table[i]:
                    v = bank.co[self.cmd_addr[i]]
                else:
                    v = bank.hr[self.cmd_addr[i]]
            elif hold & (1 << i):
                v = self.actual[i]
            else:
                v = bank.hr[self.safe_addr[i]]
            self.actual[i] = v
            if self.fb_table[i]:
                bank.di[self.fb_addr[i]] = 1 if v else 0
            else:
                bank.ir[self.fb_addr[i]] = v
            if self.driver is not None:
                self.driver(i, v)
        self.safe_state = not armed
        return self.safe_state
