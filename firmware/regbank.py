"""Register bank: the live register image of one device, built from regmap.

Holds the four Modbus tables as preallocated arrays plus, per register, what a
write may do (hole / read-only / writable, and the point's range as sort keys;
see regmap.sort_key). Everything the frame handler touches is allocated here,
once, so serving a frame allocates nothing.

Writes are validated in full before any word is stored: a multi-register write
with one bad value changes nothing.
"""

from array import array

from regmap import QUALITY_BASE as _QBASE

from micropython import const

# Register kinds (per address).
K_HOLE = const(0)
K_RO = const(1)
K_RW1 = const(2)   # first (only) word of a 16-bit writable point
K_RW2 = const(3)   # first word of a 32-bit writable point
K_RW2B = const(4)  # second word of a 32-bit writable point

OK = const(0)
EX_FUNCTION = const(1)
EX_ADDRESS = const(2)
EX_VALUE = const(3)
EX_DEVICE = const(4)

_TYPE_CODES = {"u16": 0, "i16": 1, "u32": 2, "i32": 3, "f32": 4, "bit": 0}


_TYPE_NAMES = ("u16", "i16", "u32", "i32", "f32")


def _key(tc, hi, lo):
    from codec import sort_key
    return sort_key(_TYPE_NAMES[tc], hi, lo)


class RegBank:
    def __init__(self, profile, settings=None):
        """settings: {holding point: value} replacing the map's defaults (the
        board's limits, validated by fwconfig)."""
        import regsetup
        # Input samples taken (analog.py, plantlink.py bump it, modulo 2^14):
        # the interlocks tell a live input from a stale one by it.
        self.samples = 0
        regsetup.build(self, profile, settings)

    # ---- named access (setup and slow paths; the code lives in regsetup) ----
    def lookup(self, names):
        """[(table, address, type, scale)] for names, in order, in one pass."""
        import regsetup
        return regsetup.lookup(self, names)

    def quality_slots(self, names):
        import regsetup
        return regsetup.quality_slots(self, names)

    def addr(self, name):
        return self.lookup((name,))[0]

    def quality_slot(self, name):
        import regsetup
        return regsetup.quality_slot(self, name)

    def set(self, name, value):
        import regsetup
        regsetup.set_value(self, name, value)

    def get(self, name):
        import regsetup
        return regsetup.get_value(self, name)

    def set_quality(self, slot, q):
        w = _QBASE + (slot >> 3)
        sh = (slot & 7) << 1
        self.ir[w] = (self.ir[w] & ~(3 << sh) & 0xFFFF) | ((q & 3) << sh)

    def get_quality(self, slot):
        return (self.ir[_QBASE + (slot >> 3)] >> ((slot & 7) << 1)) & 3

    # ---- frame-handler checks (allocation-free) -----------------------------
    def check_read(self, kind, addr, qty):
        """EX_ADDRESS if [addr, addr+qty) leaves the table or touches a hole."""
        if addr + qty > len(kind):
            return EX_ADDRESS
        for i in range(addr, addr + qty):
            if kind[i] == K_HOLE:
                return EX_ADDRESS
        return OK

    def check_coil_write(self, addr, qty):
        if addr + qty > self.n_co:
            return EX_ADDRESS
        kind = self.co_kind
        for i in range(addr, addr + qty):
            if kind[i] != K_RW1:
                return EX_ADDRESS
        return OK

    def check_hr_write(self, addr, qty, buf, off):
        """Validate a write of qty words taken big-endian from buf[off:].

        Addresses first (EX_ADDRESS: hole, read-only, or half of a 32-bit
        point), then values (EX_VALUE: outside the point's range).
        """
        if addr + qty > self.n_hr:
            return EX_ADDRESS
        kind = self.hr_kind
        if kind[addr] == K_RW2B:
            return EX_ADDRESS
        i = 0
        while i < qty:
            k = kind[addr + i]
            if k == K_RW1:
                i += 1
            elif k == K_RW2:
                if i + 1 >= qty:
                    return EX_ADDRESS
                i += 2
            else:
                return EX_ADDRESS
        lim = self.hr_lim
        i = 0
        while i < qty:
            a = addr + i
            o = off + 2 * i
            hi = (buf[o] << 8) | buf[o + 1]
            lo = 0
            step = 1
            if kind[a] == K_RW2:
                lo = (buf[o + 2] << 8) | buf[o + 3]
                step = 2
            t = self.hr_type[a]
            # Inline regmap.sort_key: a helper returning a tuple would allocate.
            if t == 1 or t == 3:
                khi = hi ^ 0x8000
                klo = lo
            elif t == 4 and hi & 0x8000:
                khi = (~hi) & 0xFFFF
                klo = (~lo) & 0xFFFF
            elif t == 4:
                khi = hi | 0x8000
                klo = lo
            else:
                khi = hi
                klo = lo
            b = 4 * a
            if khi < lim[b] or (khi == lim[b] and klo < lim[b + 1]):
                return EX_VALUE
            if khi > lim[b + 2] or (khi == lim[b + 2] and klo > lim[b + 3]):
                return EX_VALUE
            i += step
        return OK
