"""Poll and write plans built from firmware/regmap.py.

Reads are coalesced into the fewest transactions: points of one table and poll
class are merged when the registers between them belong to other points (a
small hole of at most max_gap registers that the device can read) and the
read stays within 125 registers (2000 bits). A GreenEdge device answers
exception 02 for a read that touches an undefined address, so undefined
registers are never bridged.

Poll classes: "fast" holds what the loops need every round (quality words,
measurements, profile inputs); "status" the identity and status block (armed,
comm-lost, interlocks; every status period, 0.5 s by default); "slow"
holds settings, commands and the duplicate state bits (read every slow
period, and once when a device comes up so a restart can start from what the
device is doing). Array points (waveform captures) are not polled unless named.

Writes: holding points become FC16 runs of contiguous writable registers,
coils FC15 runs; never across a register the write does not own.
"""

from dataclasses import dataclass, field

from controller.registers import point_map, quality_slots
from firmware import regmap

MAX_REGS = 125
MAX_BITS = 2000
FC_READ = {regmap.COIL: 1, regmap.DISCRETE: 2, regmap.HOLDING: 3, regmap.INPUT: 4}
BIT_TABLES = (regmap.COIL, regmap.DISCRETE)


@dataclass
class Read:
    table: str
    start: int
    count: int
    cls: str
    points: list = field(default_factory=list)  # (Point, offset from start)

    @property
    def fc(self):
        return FC_READ[self.table]


def poll_class(p):
    if p.count != 1:
        return None
    if p.table == regmap.INPUT:
        return "status" if p.address < regmap.QUALITY_BASE else "fast"
    if p.table == regmap.DISCRETE:
        return "fast" if p.address >= 8 else "slow"
    return "slow"


def plan_reads(profile, extra=(), max_gap=8):
    """Coalesced reads of a profile; extra names array points to poll (slow)."""
    pts = point_map(profile)
    for name in extra:
        if name not in pts:
            raise ValueError("profile %s has no point %r" % (profile, name))
    occupied = {t: set() for t in regmap.TABLES}
    for p in pts.values():
        occupied[p.table].update(range(p.address, p.address + p.words))
    groups = {}
    for p in pts.values():
        cls = "slow" if p.name in extra else poll_class(p)
        if cls is not None:
            groups.setdefault((p.table, cls), []).append(p)
    reads = []
    for (table, cls), members in sorted(groups.items()):
        limit = MAX_BITS if table in BIT_TABLES else MAX_REGS
        cur = None
        for p in sorted(members, key=lambda p: p.address):
            end = p.address + p.words
            if cur is not None:
                gap = range(cur.start + cur.count, p.address)
                bridgeable = len(gap) <= max_gap and all(a in occupied[table] for a in gap)
                if bridgeable and end - cur.start <= limit:
                    cur.count = end - cur.start
                    cur.points.append((p, p.address - cur.start))
                    continue
            cur = Read(table, p.address, p.words, cls, [(p, 0)])
            reads.append(cur)
    return reads


def quality_index(profile):
    """{point name: quality slot} for the measured points of a profile."""
    return {p[regmap.F_NAME]: k for k, p in enumerate(quality_slots(regmap.points(profile)))}


@dataclass
class Write:
    table: str
    start: int
    values: list  # register words or bits

    @property
    def fc(self):
        return 16 if self.table == regmap.HOLDING else 15


def plan_writes(profile, values):
    """{point: engineering value} -> [Write], each value range-checked by the map.

    Raises ValueError naming the point for an unknown, read-only or out-of-range
    value: the caller clamps to the device limits before it gets here."""
    pts = point_map(profile)
    words = {regmap.HOLDING: {}, regmap.COIL: {}}
    for name, v in values.items():
        p = pts.get(name)
        if p is None:
            raise ValueError("profile %s has no point %r" % (profile, name))
        if p.access != "rw":
            raise ValueError("%s.%s is read-only" % (profile, name))
        enc = p.encode(v)
        for i, w in enumerate(enc):
            words[p.table][p.address + i] = w
    out = []
    for table, regs in words.items():
        cur = None
        limit = 123 if table == regmap.HOLDING else 1968
        for a in sorted(regs):
            if cur is not None and a == cur.start + len(cur.values) and len(cur.values) < limit:
                cur.values.append(regs[a])
            else:
                cur = Write(table, a, [regs[a]])
                out.append(cur)
    return out
