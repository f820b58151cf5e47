"""Register bank construction and name lookups: boot-time code, dropped from
the heap once the device runs (main.py), reloaded on demand by the slow
named-access methods of RegBank (tests, diagnostics)."""

from array import array

import regmap
from regbank import K_HOLE, K_RO, K_RW1, K_RW2, K_RW2B, _TYPE_CODES, _key

def build(self, profile, settings=None):
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
        if rw and settings and name in settings:
            _store(self, table, a, p, settings[name])
        elif rw and p[regmap.F_DEFAULT] is not None:
            _store(self, table, a, p, p[regmap.F_DEFAULT])
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

def quality_slots(self, names):
    """Quality slots of several measured points, in one walk of the map."""
    meas = []
    for p in regmap.iter_points(self.profile):
        if p[regmap.F_TABLE] == regmap.INPUT and p[regmap.F_ADDR] >= regmap.MEAS_BASE \
                and p[regmap.F_COUNT] == 1:
            meas.append(p[regmap.F_ADDR])
    meas.sort()
    return [meas.index(f[1]) for f in lookup(self, names)]

def addr(self, name):
    return lookup(self, (name,))[0]

def quality_slot(self, name):
    table, a, _, _ = addr(self, name)
    if table != regmap.INPUT or a < regmap.MEAS_BASE:
        raise ValueError("%r has no quality slot" % (name,))
    slot = 0
    for p in regmap.iter_points(self.profile):
        if p[regmap.F_TABLE] == regmap.INPUT and regmap.MEAS_BASE <= p[regmap.F_ADDR] < a \
                and p[regmap.F_COUNT] == 1:
            slot += 1
    return slot

def _store(self, table, a, p, value):
    if table == regmap.COIL:
        self.co[a] = 1 if value else 0
    elif table == regmap.DISCRETE:
        self.di[a] = 1 if value else 0
    else:
        regs = self.ir if table == regmap.INPUT else self.hr
        words = regmap.encode(p, value)
        for i in range(len(words)):
            regs[a + i] = words[i]

def set_value(self, name, value):
    table, a, t, scale = addr(self, name)
    _store(self, table, a, (name, table, a, t, scale), value)

def get_value(self, name):
    table, a, t, scale = addr(self, name)
    if table == regmap.COIL:
        return self.co[a]
    if table == regmap.DISCRETE:
        return self.di[a]
    regs = self.ir if table == regmap.INPUT else self.hr
    return regmap.decode((name, table, a, t, scale), regs, a)
