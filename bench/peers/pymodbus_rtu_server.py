"""Peer for the modbus benchmark: a plain pymodbus serial (RTU) server on a tty.

Serves unit 1 with 250 input and holding registers. Prints "ready" once the
port is open. Run: python pymodbus_rtu_server.py TTY BAUD
"""

import logging
import sys
import warnings

from pymodbus.datastore import (ModbusDeviceContext, ModbusSequentialDataBlock,
                                ModbusServerContext)
from pymodbus.server import StartSerialServer


def main():
    port, baud = sys.argv[1], int(sys.argv[2])
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    # Address 1 stores at protocol address 0 (pymodbus 3.16 offsets by one).
    dev = ModbusDeviceContext(ir=ModbusSequentialDataBlock(1, list(range(250))),
                              hr=ModbusSequentialDataBlock(1, [0] * 250))
    ctx = ModbusServerContext(devices={1: dev}, single=False)
    print("ready", flush=True)
    StartSerialServer(ctx, port=port, baudrate=baud, timeout=0.5)


if __name__ == "__main__":
    main()
