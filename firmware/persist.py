"""Energy counter persistence on flash: two slots, a write budget.

Slots: <path>.0 and <path>.1 hold one line each, "<seq> <wh> <crc>", the CRC
being the Modbus CRC-16 of "<seq> <wh>". A save rewrites the slot that does not
hold the newest value, with seq + 1; load() takes the valid slot with the
highest seq. A power cut at any point of a save spoils at most the slot being
written, so the other one (the previous save) is read back: a cut loses at
most what was counted since the last save, and a valid slot is never ignored.
The single file of older firmware (<path>, and <path>.tmp that a cut between
unlink and rename left behind) is read too, so an update keeps the count.

Write budget: flash without wear levelling (STM32 internal flash under FAT,
~10,000 erase cycles) rewrites the same sectors on every save (directory and
FAT sectors are shared by both slots). The store saves at most once per
min_interval_s = life_years x 365 x 86400 / flash_cycles: 10 years at 10,000
cycles -> one save per 31,536 s (2.7 saves a day). A save needs both a whole
energy step and the interval; a power cut then loses up to one interval of
energy (or one step, whichever is more). Boards with wear-levelled flash
(littlefs on RP2040/ESP32) may state more cycles in their config.

Time: maybe_save(wh, now_ms) takes a tick in ms; the time since the last save
is a saturating counter advanced by the per-call delta, so it survives tick
wrap (2^30 ms) on 32-bit ports.

A fresh board has no slot and starts from 0 (ST_CONFIG_ERROR is not set for
this); corrupt slots are ignored and said so once.
"""

from time import ticks_diff

from micropython import const

_YEAR_S = const(31536000)
_AGE_MAX_MS = const(1000000000)  # saturates: above any interval worth stating


def _crc(s):
    from rtuframe import crc16
    b = s.encode()
    return crc16(b, len(b))


def _old_crc(s):
    c = 0
    for ch in s:
        c = (c * 31 + ord(ch)) & 0xFFFF
    return c


def min_interval_s(flash_cycles, life_years):
    """Seconds between saves so that flash_cycles last life_years."""
    if flash_cycles < 1 or life_years <= 0:
        raise ValueError("flash budget: %r cycles over %r years" % (flash_cycles, life_years))
    return life_years * _YEAR_S / flash_cycles


class EnergyStore:
    def __init__(self, path, step_wh=1000, flash_cycles=10000, life_years=10, now_ms=0):
        if step_wh < 1:
            raise ValueError("step_wh %r < 1" % (step_wh,))
        self.path = path
        self.step = int(step_wh)
        iv = min_interval_s(flash_cycles, life_years) * 1000
        self.interval_ms = int(iv) if iv < _AGE_MAX_MS else _AGE_MAX_MS
        self.seq = -1
        self.slot = 1  # the slot holding the newest value; the next save goes to the other
        self.saved = self.load()
        self.writes = 0
        self._last_ms = now_ms
        self._age_ms = _AGE_MAX_MS  # first step after boot saves at once

    def _read(self, name, old=False):
        """(seq, wh) of a valid slot, else None."""
        try:
            with open(name) as f:
                parts = f.read().split()
        except OSError:
            return None
        try:
            if old and len(parts) == 2:
                if _old_crc(parts[0]) == int(parts[1]):
                    return (-1, int(parts[0]))
            elif len(parts) == 3:
                body = parts[0] + " " + parts[1]
                if _crc(body) == int(parts[2]):
                    return (int(parts[0]), int(parts[1]))
        except ValueError:
            pass
        print("energy store: %s is corrupt, ignored" % name)
        return None

    def load(self):
        """The newest valid value (Wh); 0 when there is none."""
        best = None
        for k in (0, 1):
            r = self._read("%s.%d" % (self.path, k))
            if r is not None and (best is None or r[0] > best[0]):
                best = r
                self.slot = k
        if best is None:
            for name in (self.path, self.path + ".tmp"):
                r = self._read(name, True)
                if r is not None and (best is None or r[1] > best[1]):
                    best = r
        if best is None:
            return 0
        self.seq = best[0]
        return best[1]

    def maybe_save(self, wh, now_ms):
        """Save when wh is a whole step past the last saved value and the
        flash budget's interval has passed since the last save."""
        dt = ticks_diff(now_ms, self._last_ms)
        self._last_ms = now_ms
        if dt > 0:
            a = self._age_ms + dt
            self._age_ms = a if a < _AGE_MAX_MS else _AGE_MAX_MS
        if wh - self.saved < self.step or self._age_ms < self.interval_ms:
            return False
        seq = self.seq + 1
        slot = 1 - self.slot
        body = "%d %d" % (seq, wh)
        with open("%s.%d" % (self.path, slot), "w") as f:
            f.write("%s %d\n" % (body, _crc(body)))
        self.seq = seq
        self.slot = slot
        self.saved = wh
        self.writes += 1
        self._age_ms = 0
        return True
