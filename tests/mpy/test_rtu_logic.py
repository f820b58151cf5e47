"""Frame handler on the real MicroPython VM: exact reply bytes and no allocation.

Run by tests/test_firmware_unix.py as `micropython test_rtu_logic.py` with the
x64 firmware build on MICROPYPATH. Prints one line per check and "ALL OK".
"""

import micropython

import regbank
from mpytest import check, finish, frame
from modbus_rtu import RtuServer

def run(srv, req):
    for i in range(len(req)):
        srv.rx[i] = req[i]
    micropython.heap_lock()
    try:
        n = srv.handle(len(req))
    finally:
        micropython.heap_unlock()
    return bytes(srv.tx[:n])


bank = regbank.RegBank("scr")
srv = RtuServer(bank, 5, 115200, ("GreenEdge", "scr", "1.0.0", "", "GreenEdge scr device", "sim", "unit 5"))

# FC03 of arm..safe_hold_mask: defaults 0, 100 (10.0 s), 0.
check("fc03", run(srv, frame(b"\x05\x03\x00\x00\x00\x03")), bytes(frame(b"\x05\x03\x06\x00\x00\x00\x64\x00\x00")))
# FC04 across the hole 9..15 -> exception 02.
check("fc04 hole", run(srv, frame(b"\x05\x04\x00\x00\x00\x10")), bytes(frame(b"\x05\x84\x02")))
# FC03 quantity 126 -> exception 03; quantity 0 -> 03.
check("fc03 qty126", run(srv, frame(b"\x05\x03\x00\x00\x00\x7e")), bytes(frame(b"\x05\x83\x03")))
check("fc03 qty0", run(srv, frame(b"\x05\x03\x00\x00\x00\x00")), bytes(frame(b"\x05\x83\x03")))
# Unknown function 0x64 -> 01.
check("fc100", run(srv, frame(b"\x05\x64\x00\x00")), bytes(frame(b"\x05\xe4\x01")))
# FC06 valve_cmd_pct (holding 32) = 50.00 % -> echo; 100.01 % -> 03; input-only addr 9 -> 02.
check("fc06 ok", run(srv, frame(b"\x05\x06\x00\x20\x13\x88")), bytes(frame(b"\x05\x06\x00\x20\x13\x88")))
check("fc06 range", run(srv, frame(b"\x05\x06\x00\x20\x27\x11")), bytes(frame(b"\x05\x86\x03")))
check("fc06 hole", run(srv, frame(b"\x05\x06\x00\x09\x00\x01")), bytes(frame(b"\x05\x86\x02")))
# FC06 on half of a 32-bit point (min_flue_gas_flow at 50..51) -> 02.
check("fc06 half32", run(srv, frame(b"\x05\x06\x00\x32\x00\x01")), bytes(frame(b"\x05\x86\x02")))
# FC16 on 48..52: one bad value (min_catalyst_temp 100.0 C < 150) -> 03 and nothing changes.
before = bytes(bank.hr)
req = frame(b"\x05\x10\x00\x30\x00\x05\x0a" + b"\x00\xc8" + b"\x03\xe8" + b"\x00\x03\x0d\x40" + b"\x75\x30")
check("fc16 bad value", run(srv, req), bytes(frame(b"\x05\x90\x03")))
check("fc16 nothing applied", bytes(bank.hr), before)
# Same write with 320.0 C applies all five points.
req = frame(b"\x05\x10\x00\x30\x00\x05\x0a" + b"\x00\xc8" + b"\x0c\x80" + b"\x00\x03\x0d\x40" + b"\x75\x30")
check("fc16 ok", run(srv, req), bytes(frame(b"\x05\x10\x00\x30\x00\x05")))
check("fc16 u32 stored", bank.get("min_flue_gas_flow_nm3h"), 200000)
check("fc16 i16 stored", bank.get("min_catalyst_temp_c") > 319.9, True)
# FC05 dosing_enable on, bad value 0x1234 -> 03, FC01 reads it back.
check("fc05", run(srv, frame(b"\x05\x05\x00\x00\xff\x00")), bytes(frame(b"\x05\x05\x00\x00\xff\x00")))
check("fc05 value", run(srv, frame(b"\x05\x05\x00\x00\x12\x34")), bytes(frame(b"\x05\x85\x03")))
check("fc01", run(srv, frame(b"\x05\x01\x00\x00\x00\x01")), bytes(frame(b"\x05\x01\x01\x01")))
# FC02 on 0..4 and 8..12 ; across the hole 5..7 -> 02.
check("fc02 hole", run(srv, frame(b"\x05\x02\x00\x00\x00\x0a")), bytes(frame(b"\x05\x82\x02")))
# FC15 one coil beyond the map -> 02.
check("fc15 addr", run(srv, frame(b"\x05\x0f\x00\x00\x00\x02\x01\x03")), bytes(frame(b"\x05\x8f\x02")))
# FC08 echo and wrong length for FC03 (implied length wrong -> 03).
check("fc08 echo", run(srv, frame(b"\x05\x08\x00\x00\xa5\x37")), bytes(frame(b"\x05\x08\x00\x00\xa5\x37")))
check("fc03 length", run(srv, frame(b"\x05\x03\x00\x00\x00\x01\x00")), bytes(frame(b"\x05\x83\x03")))
# 43/14 basic, object id out of range -> restart at 0; individual 7 -> 02; code 5 -> 03.
want = b"\x05\x2b\x0e\x01\x82\x00\x00\x03" + b"\x00\x09GreenEdge" + b"\x01\x03scr" + b"\x02\x051.0.0"
check("43/14 basic", run(srv, frame(b"\x05\x2b\x0e\x01\x00")), bytes(frame(want)))
check("43/14 restart", run(srv, frame(b"\x05\x2b\x0e\x01\x09")), bytes(frame(want)))
check("43/14 indiv", run(srv, frame(b"\x05\x2b\x0e\x04\x07")), bytes(frame(b"\x05\xab\x02")))
check("43/14 code", run(srv, frame(b"\x05\x2b\x0e\x05\x00")), bytes(frame(b"\x05\xab\x03")))
# Other unit and bad CRC: no reply; broadcast write applied, no reply.
check("other unit", run(srv, frame(b"\x06\x03\x00\x00\x00\x01")), b"")
bad = frame(b"\x05\x03\x00\x00\x00\x01")
bad[-1] ^= 0xFF
check("bad crc", run(srv, bad), b"")
check("broadcast", run(srv, frame(b"\x00\x06\x00\x20\x07\xd0")), b"")
check("broadcast applied", bank.get("valve_cmd_pct") > 19.99, True)
# Counters: bus message, bus error, exception, server message, no response.
got = []
for sub in (0x0B, 0x0C, 0x0D, 0x0E, 0x0F):
    r = run(srv, frame(bytes((5, 8, 0, sub, 0, 0))))
    got.append((r[4] << 8) | r[5])
# 25 valid frames by the 0x0B read (24 of the 27 sent + itself), 1 bad CRC, 14
# exception replies, 27 for this unit or broadcast by the 0x0E read, 1 broadcast.
check("counters", got, [25, 1, 14, 27, 1])

finish()
