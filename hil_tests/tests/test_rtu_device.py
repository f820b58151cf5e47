"""The firmware's Modbus RTU device, on real MicroPython, over a timed virtual line,
through two independent masters (pymodbus and minimalmodbus) and raw frames.

Line: master, scr device unit 5, motor device unit 6 (so every frame for one
device is also seen, and must be ignored, by the other).
"""

import struct
import time

import minimalmodbus
import pytest
from pymodbus.pdu import ExceptionResponse

from controller import registers
from hil_tests.rawbus import RawPort, check, frame, spec_client

SCR = registers.point_map("scr")
MOTOR = registers.point_map("motor")


@pytest.fixture
def client(bus):
    c = spec_client(bus["master"], 115200, timeout=0.5, retries=0)
    assert c.connect()
    yield c
    c.close()


@pytest.fixture
def raw(bus):
    with RawPort(bus["master"]) as p:
        p.drain()
        yield p


def counters(client, unit):
    return {
        "bus": client.diag_read_bus_message_count(device_id=unit).message,
        "crc": client.diag_read_bus_comm_error_count(device_id=unit).message,
        "exc": client.diag_read_bus_exception_error_count(device_id=unit).message,
        "server": client.diag_read_device_message_count(device_id=unit).message,
        "noresp": client.diag_read_device_no_response_count(device_id=unit).message,
    }


def _val(m):
    return m[0] if isinstance(m, (list, tuple)) else m


def test_read_functions_pymodbus(client):
    r = client.read_input_registers(0, count=3, device_id=5)
    assert r.registers == [1, 3, 0x0100]  # map version, profile scr, firmware 1.0
    r = client.read_input_registers(0, count=3, device_id=6)
    assert r.registers[1] == 1  # motor
    r = client.read_holding_registers(1, count=1, device_id=5)
    assert SCR["comm_loss_timeout_s"].decode(r.registers) == pytest.approx(10.0)
    r = client.read_discrete_inputs(0, count=5, device_id=5)
    # safe state; interlock active (no catalyst temperature measured yet: no NH3);
    # quality bad (nothing measured yet)
    assert r.bits[:5] == [False, True, False, True, True]
    r = client.read_coils(0, count=1, device_id=5)
    assert r.bits[0] is False


def test_write_functions_pymodbus(client):
    p = SCR["valve_cmd_pct"]
    assert not client.write_register(p.address, p.encode(37.5)[0], device_id=5).isError()
    assert p.decode(client.read_holding_registers(p.address, count=1, device_id=5).registers) == 37.5
    flow = SCR["min_flue_gas_flow_nm3h"]
    r = client.write_registers(flow.address, flow.encode(1234567), device_id=5)
    assert not r.isError()
    got = client.read_holding_registers(flow.address, count=2, device_id=5).registers
    assert flow.decode(got) == 1234567
    assert not client.write_coil(0, True, device_id=5).isError()
    assert client.read_coils(0, count=1, device_id=5).bits[0] is True
    assert not client.write_coils(0, [True, False], device_id=6).isError()
    assert client.read_coils(0, count=2, device_id=6).bits[:2] == [True, False]
    assert not client.write_coils(0, [False], device_id=5).isError()


def test_diagnostics_echo_and_counters(client):
    r = client.diag_query_data(0xA537, device_id=5)
    assert _val(r.message) in (0xA537, b"\xa5\x37")
    assert not client.diag_clear_counters(device_id=5).isError()
    c = counters(client, 5)
    # After the clear: each counter read is itself one bus message for this unit.
    assert c == {"bus": 1, "crc": 0, "exc": 0, "server": 4, "noresp": 0}


def test_identity_43_14(client):
    info = client.read_device_information(device_id=6).information
    assert info[0] == b"GreenEdge" and info[1] == b"motor" and info[2] == b"1.0.0"
    info = client.read_device_information(read_code=2, device_id=5).information
    assert info[1] == b"scr" and info[4] == b"GreenEdge scr device" and info[6] == b"unit 5"


@pytest.mark.parametrize("call, code", [
    (lambda c: c.read_input_registers(0, count=16, device_id=5), 2),      # across hole 9..15
    (lambda c: c.read_input_registers(60, count=1, device_id=5), 2),      # past the map
    (lambda c: c.write_register(32, 10001, device_id=5), 3),              # 100.01 %
    (lambda c: c.write_register(5, 1, device_id=5), 2),                   # hole
    (lambda c: c.write_register(51, 0, device_id=5), 2),                  # half of a u32
    (lambda c: c.write_registers(0, [2], device_id=5), 3),                # arm = 2
    (lambda c: c.write_coil(3, True, device_id=5), 2),                    # no such coil
])
def test_exceptions_pymodbus(client, call, code):
    r = call(client)
    assert isinstance(r, ExceptionResponse), r
    assert r.exception_code == code


def test_multi_write_with_one_bad_value_changes_nothing(client):
    before = client.read_holding_registers(48, count=5, device_id=5).registers
    vals = list(before)
    vals[0] = SCR["valve_rate_pct_s"].encode(5)[0]
    vals[1] = 1000  # min_catalyst_temp 100.0 C < 150 C
    r = client.write_registers(48, vals, device_id=5)
    assert isinstance(r, ExceptionResponse) and r.exception_code == 3
    assert client.read_holding_registers(48, count=5, device_id=5).registers == before


def test_minimalmodbus_as_second_master(bus):
    inst = minimalmodbus.Instrument(bus["master"], 6)
    inst.serial.baudrate = 115200
    inst.serial.timeout = 0.5
    inst.clear_buffers_before_each_transaction = True
    try:
        assert inst.read_register(1, functioncode=4) == 1
        inst.write_register(MOTOR["speed_ref_pct"].address, 55.25, number_of_decimals=2)
        assert inst.read_register(MOTOR["speed_ref_pct"].address, 2) == pytest.approx(55.25)
        inst.write_registers(50, [1500, 9000])  # min 15 %, max 90 %
        assert inst.read_registers(50, 2) == [1500, 9000]
        assert inst.read_long(6, functioncode=4) >= 0  # uptime_s, u32 high word first
        assert inst.read_float(MOTOR["process_pv"].address, functioncode=4) == 0.0
        inst.write_bit(0, 1, functioncode=5)
        assert inst.read_bit(0, functioncode=1) == 1
        inst.write_bits(0, [0, 1])
        assert inst.read_bits(0, 2, functioncode=1) == [0, 1]
        assert inst.read_bits(0, 5, functioncode=2)[1] == 1  # safe state
        with pytest.raises(minimalmodbus.IllegalRequestError):
            inst.write_register(MOTOR["speed_ref_pct"].address, 101, number_of_decimals=2)
        with pytest.raises(minimalmodbus.IllegalRequestError):
            inst.read_registers(4, 2)  # host_heartbeat, then a hole
    finally:
        inst.serial.close()


def test_unknown_function_raw(raw):
    assert raw.transact(frame(5, b"\x64\x00\x00")) == frame(5, b"\xe4\x01")
    assert raw.transact(frame(5, b"\x07")) == frame(5, b"\x87\x01")  # not implemented
    assert raw.transact(frame(5, b"\x08\x00\x01\x00\x00")) == frame(5, b"\x88\x01")


@pytest.mark.parametrize("pdu, reply", [
    (b"\x03\x00\x00\x00\x7e", b"\x83\x03"),          # 126 registers
    (b"\x03\x00\x00\x00\x00", b"\x83\x03"),          # 0 registers
    (b"\x02\x00\x00\x07\xd1", b"\x82\x03"),          # 2001 inputs
    (b"\x10\x00\x20\x00\x7c\xf8" + bytes(248), b"\x90\x03"),  # 124-register write
    (b"\x10\x00\x20\x00\x02\x02\x00\x00", b"\x90\x03"),     # byte count disagrees
    (b"\x0f\x00\x00\x00\x01\x02\x01\x00", b"\x8f\x03"),     # byte count disagrees
    (b"\x05\x00\x00\x12\x34", b"\x85\x03"),          # coil value not 0/FF00
    (b"\x2b\x0d\x01\x00", b"\xab\x01"),               # MEI type other than 14
])
def test_quantity_and_value_exceptions_raw(raw, pdu, reply):
    assert raw.transact(frame(5, pdu)) == frame(5, reply)


def test_bad_crc_ignored_and_counted(raw):
    raw.transact(frame(5, b"\x08\x00\x0a\x00\x00"))
    bad = bytearray(frame(5, b"\x03\x00\x00\x00\x01"))
    bad[-2] ^= 0x55
    assert raw.transact(bytes(bad), timeout=0.05) == b""
    r = raw.transact(frame(5, b"\x08\x00\x0c\x00\x00"))
    assert check(r) and r[4:6] == b"\x00\x01"


def test_other_units_frames_ignored(raw):
    raw.transact(frame(5, b"\x08\x00\x0a\x00\x00"))
    # Unit 6 answers its own frame; unit 5 sees it and stays silent.
    r = raw.transact(frame(6, b"\x03\x00\x00\x00\x01"))
    assert check(r) and r[0] == 6 and len(r) == 7
    assert raw.transact(frame(7, b"\x03\x00\x00\x00\x01"), timeout=0.05) == b""
    bus_count = raw.transact(frame(5, b"\x08\x00\x0b\x00\x00"))
    server = raw.transact(frame(5, b"\x08\x00\x0e\x00\x00"))
    # Unit 5 counts the frames for 6 and 7, unit 6's reply and the count request
    # itself as bus messages (4), but only its own two requests as server messages.
    # Unit 6's reply follows the request by ~2.4 ms on the wire; a host too busy to
    # run unit 5 for that long hands it both at once: one frame with a bad CRC
    # instead of two messages. The server count never changes.
    errors = raw.transact(frame(5, b"\x08\x00\x0c\x00\x00"))
    n_bus = struct.unpack(">H", bus_count[4:6])[0]
    n_err = struct.unpack(">H", errors[4:6])[0]
    assert (n_bus, n_err) in ((4, 0), (2, 1)), (n_bus, n_err)
    assert struct.unpack(">H", server[4:6])[0] == 2


def test_broadcast_write_applied_without_reply(bus, client):
    # A command (holding 32: scr valve_cmd_pct, motor speed_ref_pct) is applied
    # by broadcast; a safety setting (holding 16: a safe value) never is.
    for unit in (5, 6):
        client.write_register(32, 0, device_id=unit)
        client.write_register(16, 0, device_id=unit)
    before = counters(client, 5)["noresp"]
    r = client.write_register(32, 1234, device_id=0, no_response_expected=True)
    assert r is None or not r.isError()
    # The master owes the line a turnaround delay after a broadcast (serial-line
    # spec 2.4.1: typically 100-200 ms, time for every slave to act on it).
    time.sleep(0.1)
    client.write_register(16, 1234, device_id=0, no_response_expected=True)
    time.sleep(0.1)
    for unit in (5, 6):
        assert client.read_holding_registers(32, count=1, device_id=unit).registers == [1234]
        assert client.read_holding_registers(16, count=1, device_id=unit).registers == [0]
    assert counters(client, 5)["noresp"] == before + 2


def test_broadcast_read_gets_no_reply(raw):
    assert raw.transact(frame(0, b"\x03\x00\x00\x00\x01"), timeout=0.05) == b""
