"""Register codec: engineering values <-> Modbus register words.

The one codec for firmware and host. 32-bit values are HIGH WORD FIRST; f32 is
IEEE 754 single precision; engineering value = raw * scale. A point here is any
tuple with regmap's layout (name 0, type 3, scale 4). Kept apart from regmap so
a running device can drop the map (init-only) and keep the codec.
"""

# Quality of a point (2 bits per slot in the quality words; regmap re-exports).
Q_GOOD = 0
Q_UNCERTAIN = 1
Q_BAD = 2
Q_NOT_WIRED = 3

WORDS = {"bit": 1, "u16": 1, "i16": 1, "u32": 2, "i32": 2, "f32": 2}


def encode(p, value):
    """Engineering value -> list of register words (high word first)."""
    t = p[3]
    if t == "bit":
        return [1 if value else 0]
    if t == "f32":
        import struct
        b = struct.pack(">f", value)
        return [(b[0] << 8) | b[1], (b[2] << 8) | b[3]]
    raw = int(round(value / p[4]))
    if t == "u16":
        if not 0 <= raw <= 0xFFFF:
            raise ValueError("%s: %r out of u16 range" % (p[0], value))
        return [raw]
    if t == "i16":
        if not -0x8000 <= raw <= 0x7FFF:
            raise ValueError("%s: %r out of i16 range" % (p[0], value))
        return [raw & 0xFFFF]
    if t == "u32":
        if not 0 <= raw <= 0xFFFFFFFF:
            raise ValueError("%s: %r out of u32 range" % (p[0], value))
        return [(raw >> 16) & 0xFFFF, raw & 0xFFFF]
    if t == "i32":
        if not -0x80000000 <= raw <= 0x7FFFFFFF:
            raise ValueError("%s: %r out of i32 range" % (p[0], value))
        raw &= 0xFFFFFFFF
        return [(raw >> 16) & 0xFFFF, raw & 0xFFFF]
    raise ValueError("%s: unknown type %r" % (p[0], t))


def decode(p, words, offset=0):
    """Register words (high word first) -> engineering value."""
    t = p[3]
    w0 = words[offset]
    if t == "bit":
        return 1 if w0 else 0
    if t == "u16":
        return w0 * p[4]
    if t == "i16":
        return (w0 - 0x10000 if w0 & 0x8000 else w0) * p[4]
    w1 = words[offset + 1]
    if t == "f32":
        import struct
        return struct.unpack(">f", bytes((w0 >> 8, w0 & 0xFF, w1 >> 8, w1 & 0xFF)))[0]
    raw = (w0 << 16) | w1
    if t == "i32" and raw & 0x80000000:
        raw -= 0x100000000
    return raw * p[4]


def sort_key(t, hi, lo):
    """Words -> (key_hi, key_lo): two small ints that order like the value.

    Lets the firmware range-check any type without building floats or big ints
    (allocation-free on a 32-bit MCU): compare key_hi first, then key_lo.
    For 16-bit types hi is the only word and key_lo is 0.
    """
    if t == "i16" or t == "i32":
        return hi ^ 0x8000, lo
    if t == "f32":
        if hi & 0x8000:
            return (~hi) & 0xFFFF, (~lo) & 0xFFFF
        return hi | 0x8000, lo
    return hi, lo
