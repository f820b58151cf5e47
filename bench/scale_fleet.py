"""The simulated field of the scale benchmark (bench/scale_bench.py): many
GreenEdge devices served by pymodbus, in a process of their own.

Each device is a hil_tests.fakeline.FakeDevice (the firmware's register map
from firmware/regmap.py, answering like the firmware: range-checked writes,
arm -> ST_ARMED, comm-loss trip on a stale heartbeat, the settings lock,
motor physics) behind pymodbus' own servers:

    tcp      a Modbus TCP gateway: one pymodbus TCP server, units 1..n
    serial   one pymodbus RTU server on a virtual RS-485 line's port (hil_tests/
             vline.py, wire timing), answering units 1..n: a multi-drop line
    rtu_tcp  a serial server as above plus the project's transparent gateway
             (hil_tests/gateway.py) on the line's other port: RTU frames over TCP

The physics of every device is stepped every STEP_S. Run:
    python -m bench.scale_fleet '{"tcp": [[port, n]], "serial": [[tty, baud, n]],
                                  "rtu_tcp": [[tty_server, tty_gateway, baud, n, port]]}'
prints "ready" once every server listens; stops on SIGTERM or a closed stdin.
"""

import asyncio
import json
import logging
import os
import signal
import sys
import warnings

STEP_S = 0.5


def _context(devices):
    from pymodbus.constants import ExcCodes
    from pymodbus.datastore import ModbusServerContext
    from pymodbus.exceptions import NoSuchIdException
    from firmware import regmap

    table = {1: regmap.COIL, 2: regmap.DISCRETE, 3: regmap.HOLDING, 4: regmap.INPUT,
             5: regmap.COIL, 6: regmap.HOLDING, 15: regmap.COIL, 16: regmap.HOLDING}

    class FleetContext(ModbusServerContext):
        """Routes pymodbus' datastore calls to the FakeDevice at that unit."""

        def __init__(self):  # the base class wants ModbusDeviceContexts: not used
            self._fleet = devices
            self.simdevices = []
            self.old_simulator = True  # pymodbus then calls async_get/setValues here

        def device_ids(self):
            return list(self._fleet)

        def _dev(self, unit):
            d = self._fleet.get(unit)
            if d is None:
                raise NoSuchIdException("no unit %s" % unit)
            return d

        async def async_getValues(self, device_id, func_code, address, count=1):
            d = self._dev(device_id)
            t = table[func_code]
            if any(address + i not in d.by_addr[t] for i in range(count)):
                return ExcCodes.ILLEGAL_ADDRESS  # the firmware never bridges a hole
            words = d.read(t, address, count)
            return [bool(w) for w in words] if t in (regmap.COIL, regmap.DISCRETE) else words

        async def async_setValues(self, device_id, func_code, address, values):
            d = self._dev(device_id)
            vals = [int(v) for v in values]
            if func_code == 6 and address == d.points["settings_lock"].address:
                ex = d.write_lock(vals[0])
            else:
                ex = d.write(table[func_code], address, vals)
            return None if ex is None else ExcCodes(ex)

    return FleetContext()


async def _main(spec):
    from pymodbus.framer import FramerType
    from pymodbus.server import ModbusSerialServer, ModbusTcpServer
    from hil_tests.fakeline import FakeDevice
    from hil_tests.gateway import Gateway

    fleet = []
    servers = []
    gateways = []

    def devices(n):
        ds = {u: FakeDevice("motor", u) for u in range(1, n + 1)}
        fleet.extend(ds.values())
        return ds

    for port, n in spec.get("tcp", []):
        servers.append(ModbusTcpServer(_context(devices(n)), address=("127.0.0.1", port),
                                       ignore_missing_devices=True))
    for tty, baud, n in spec.get("serial", []):
        servers.append(ModbusSerialServer(_context(devices(n)), framer=FramerType.RTU, port=tty,
                                          baudrate=baud, parity="N", stopbits=2,
                                          ignore_missing_devices=True))
    for tty_srv, tty_gw, baud, n, port in spec.get("rtu_tcp", []):
        servers.append(ModbusSerialServer(_context(devices(n)), framer=FramerType.RTU,
                                          port=tty_srv, baudrate=baud, parity="N", stopbits=2,
                                          ignore_missing_devices=True))
        gateways.append(Gateway(tty_gw, port=port))
    tasks = [asyncio.create_task(s.serve_forever()) for s in servers]

    async def physics():
        while True:
            for d in fleet:
                d.advance(STEP_S)
            await asyncio.sleep(STEP_S)

    tasks.append(asyncio.create_task(physics()))
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 4096) else None)
    await stop.wait()
    for g in gateways:
        g.close()
    for s in servers:
        await s.shutdown()
    for t in tasks:
        t.cancel()


def main():
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    asyncio.run(_main(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
