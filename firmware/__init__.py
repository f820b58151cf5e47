"""GreenEdge firmware (MicroPython). The host imports firmware.regmap from here;
this file itself is host-only and never flashed."""
