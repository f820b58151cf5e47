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
    def __init__(self, profile):
        import regmap
        self.profile = profile
        n = {}
        for t in regmap.TABLES:
            n[t] = 0
        n_meas = 0  # measured points: each owns a quality slot
        # Two streaming passes over the map (sizes, then kinds and limits) so the
        # point list never sits in RAM as a whole.
        for p in regmap.iter_points(profile):
            table = p[regmap.F_TABLE]
            end = p[regmap.F_ADDR] + regmap.size(p)
            if end > n[table]:
                n[table] = end
            if table == regmap.INPUT and p[regmap.F_ADDR] >= regmap.MEAS_BASE \
                    and p[regmap.F_COUNT] == 1:
                n_meas += 1
        self.n_co = n[regmap.COIL]
        self.n_di = n[regmap.DISCRETE]
        self.n_ir = n[regmap.INPUT]
        self.n_hr = n[regmap.HOLDING]
        self.co = bytearray(self.n_co)
        self.di = bytearray(self.n_di)
        self.ir = array("H", bytes(2 * self.n_ir))
        self.hr = array("H", bytes(2 * self.n_hr))
        self.co_kind = bytearray(self.n_co)
        self.di_kind = bytearray(self.n_di)
        self.ir_kind = bytearray(self.n_ir)
        self.hr_kind = bytearray(self.n_hr)
        self.hr_type = bytearray(self.n_hr)
        # Range keys per holding register: min_hi, min_lo, max_hi, max_lo.
        self.hr_lim = array("H", bytes(8 * self.n_hr))
        kinds = {regmap.COIL: self.co_kind, regmap.DISCRETE: self.di_kind,
                 regmap.INPUT: self.ir_kind, regmap.HOLDING: self.hr_kind}
        for p in regmap.iter_points(profile):
            name, table, a, t = p[regmap.F_NAME], p[regmap.F_TABLE], p[regmap.F_ADDR], p[regmap.F_TYPE]
            kind = kinds[table]
            words = regmap.WORDS[t]
            rw = p[regmap.F_ACCESS] == "rw"
            if not rw:
                for i in range(regmap.size(p)):
                    kind[a + i] = K_RO
            elif words == 1:
                kind[a] = K_RW1
            else:
                kind[a] = K_RW2
                kind[a + 1] = K_RW2B
            if rw and table == regmap.HOLDING:
                tc = _TYPE_CODES[t]
                self.hr_type[a] = tc
                lo = regmap.encode(p, p[regmap.F_MIN])
                hi = regmap.encode(p, p[regmap.F_MAX])
                klo = _key(tc, lo[0], lo[1] if words == 2 else 0)
                khi = _key(tc, hi[0], hi[1] if words == 2 else 0)
                self.hr_lim[4 * a] = klo[0]
                self.hr_lim[4 * a + 1] = klo[1]
                self.hr_lim[4 * a + 2] = khi[0]
                self.hr_lim[4 * a + 3] = khi[1]
            if rw and p[regmap.F_DEFAULT] is not None:
                self._store(table, a, p, p[regmap.F_DEFAULT])
        self.ir[0] = regmap.MAP_VERSION
        self.ir[1] = regmap.PROFILE_IDS[profile]
        self.ir[2] = (regmap.FW_VERSION[0] << 8) | regmap.FW_VERSION[1]
        self.n_quality = n_meas
        # Every measured slot starts bad (not yet measured); unused slots not wired.
        for k in range(regmap.QUALITY_WORDS * 8):
            self.set_quality(k, regmap.Q_BAD if k < self.n_quality else regmap.Q_NOT_WIRED)

    # ---- named access (setup and slow paths; allocation allowed) ----------
    # No name table is kept in RAM: lookups walk the map once per call.
    def lookup(self, names):
        """[(table, address, type, scale)] for names, in order, in one pass."""
        import regmap
        found = [None] * len(names)
        for p in regmap.iter_points(self.profile):
            n = p[regmap.F_NAME]
            for i in range(len(names)):
                if names[i] == n:
                    found[i] = (p[regmap.F_TABLE], p[regmap.F_ADDR], p[regmap.F_TYPE],
                                p[regmap.F_SCALE])
        for i in range(len(names)):
            if found[i] is None:
                raise ValueError("no point %r in profile %s" % (names[i], self.profile))
        return found

    def addr(self, name):
        return self.lookup((name,))[0]

    def quality_slot(self, name):
        import regmap
        table, a, _, _ = self.addr(name)
        if table != regmap.INPUT or a < regmap.MEAS_BASE:
            raise ValueError("%r has no quality slot" % (name,))
        slot = 0
        for p in regmap.iter_points(self.profile):
            if p[regmap.F_TABLE] == regmap.INPUT and regmap.MEAS_BASE <= p[regmap.F_ADDR] < a \
                    and p[regmap.F_COUNT] == 1:
                slot += 1
        return slot

    def _store(self, table, a, p, value):
        import regmap
        if table == regmap.COIL:
            self.co[a] = 1 if value else 0
        elif table == regmap.DISCRETE:
            self.di[a] = 1 if value else 0
        else:
            regs = self.ir if table == regmap.INPUT else self.hr
            words = regmap.encode(p, value)
            for i in range(len(words)):
                regs[a + i] = words[i]

    def set(self, name, value):
        import regmap
        table, a, t, scale = self.addr(name)
        self._store(table, a, (name, table, a, t, scale), value)

    def get(self, name):
        import regmap
        table, a, t, scale = self.addr(name)
        if table == regmap.COIL:
            return self.co[a]
        if table == regmap.DISCRETE:
            return self.di[a]
        regs = self.ir if table == regmap.INPUT else self.hr
        return regmap.decode((name, table, a, t, scale), regs, a)

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
