"""Metering ADC wiring (config adc_pins), shared by the device, the board
sources and the host's config check (importable by CPython too).

adc_pins lists the inputs of V1 V2 V3 I1 I2 I3, null where nothing is wired. V1
and one current are required. A missing V2/V3 reads V1 (one voltage for
single-phase circuits: the "1 V + several I" meter); a missing current reads
zero (mid-scale). Inputs are sampled in ascending order within a set, and the
phase compensation can only delay V, so each voltage must sit on a lower input
than its current.
"""

MISSING = 255  # slot code: no input (mid-scale, zero current)


def chan_map(pins, order=None):
    """(inputs, slots) for the 6 configured pins: inputs in sampling order (sorted
    unless order is given), slots a bytearray(6) of each slot's position in a raw
    set (MISSING for an unwired current). Raises ValueError on bad wiring."""
    if not isinstance(pins, (list, tuple)) or len(pins) != 6:
        raise ValueError("adc_pins: 6 entries (V1 V2 V3 I1 I2 I3), got %r" % (pins,))
    if pins[0] is None:
        raise ValueError("adc_pins: V1 must be wired")
    if pins[3] is None and pins[4] is None and pins[5] is None:
        raise ValueError("adc_pins: at least one current must be wired")
    wired = [p for p in pins if p is not None]
    for p in wired:
        if wired.count(p) > 1:
            raise ValueError("adc_pins: input %r wired to two channels" % (p,))
    inputs = list(order) if order is not None else sorted(wired, key=str)
    slots = bytearray(6)
    for s in range(6):
        p = pins[s]
        if p is None:
            slots[s] = inputs.index(pins[0]) if s < 3 else MISSING
        else:
            slots[s] = inputs.index(p)
    for ph in range(3):
        v = slots[ph] if pins[ph] is not None else slots[0]
        if slots[3 + ph] != MISSING and slots[3 + ph] <= v:
            raise ValueError("adc_pins: wire V%d to a lower ADC input than I%d"
                             % (ph + 1, ph + 1))
    return inputs, slots


def mux_delay(slots, nch, phase):
    """Sets by which phase's V is sampled before its I in a round-robin of nch
    inputs (0 for an unwired current)."""
    i = slots[3 + phase]
    if i == MISSING:
        return 0.0
    return (i - slots[phase]) / nch
