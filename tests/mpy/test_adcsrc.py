"""ADC source helpers (adcsrc.py) on the real MicroPython VM: the channel map of
a board's wiring, and the viper copies from raw ADC layouts into meter sets."""

from array import array

from mpytest import check, finish

import adcmap
import adcsrc


def raises(fn):
    try:
        fn()
    except ValueError as e:
        return str(e)
    return None


# 1 V + 3 I on an RP2040 (inputs 0..3): V2, V3 read V1.
inputs, slots = adcmap.chan_map([0, None, None, 1, 2, 3])
check("inputs in sampling order", inputs, [0, 1, 2, 3])
check("missing voltages read V1", list(slots), [0, 0, 0, 1, 2, 3])
check("mux delay phase 1", adcmap.mux_delay(slots, 4, 0), 0.25)
check("mux delay phase 3", adcmap.mux_delay(slots, 4, 2), 0.75)
inputs, slots = adcmap.chan_map([0, None, None, 1, None, None])
check("missing current is mid-scale", list(slots), [0, 0, 0, 1, 255, 255])
check("no mux delay without a current", adcmap.mux_delay(slots, 2, 1), 0.0)
# Pin names (STM32) sort as strings.
inputs, slots = adcmap.chan_map(["X1", "X2", "X3", "X4", "X5", "X6"])
check("named pins", (inputs, list(slots)), (["X1", "X2", "X3", "X4", "X5", "X6"], [0, 1, 2, 3, 4, 5]))

check("V1 required", raises(lambda: adcmap.chan_map([None, 1, 2, 3, 4, 5])) is not None, True)
check("a current required", raises(lambda: adcmap.chan_map([0, 1, 2, None, None, None]))
      is not None, True)
check("one input, two channels", "two channels" in raises(lambda: adcmap.chan_map([0, None, None, 0, 1, 2])), True)
check("V after I rejected", "lower ADC input" in raises(lambda: adcmap.chan_map([3, None, None, 0, 1, 2])), True)
check("6 entries", raises(lambda: adcmap.chan_map([0, 1])) is not None, True)

# A ring of 4-input round-robin samples that wraps mid-set.
inputs, slots = adcmap.chan_map([0, None, None, 1, 2, 3])
ring_n = 10
ring = array("H", [0] * ring_n)
for q in range(ring_n):
    ring[q] = 0xF000 | (100 + q)  # high bits are not ADC data: masked off
out = array("H", [0] * 12)
pos = adcsrc.unpack_ring(ring, ring_n, 8, 4, slots, out, 2)
check("ring: set across the wrap", list(out[:6]), [108, 108, 108, 109, 100, 101])
check("ring: next set", list(out[6:]), [102, 102, 102, 103, 104, 105])
check("ring: position after", pos, 6)

src = array("H", [1, 2, 3])
out = array("H", [0] * 18)
adcsrc.put_slot(src, out, 4, 3)
adcsrc.mid_slot(out, 5, 3)
check("put_slot", [out[4], out[10], out[16]], [1, 2, 3])
check("mid_slot", [out[5], out[11], out[17]], [2048, 2048, 2048])
finish()
