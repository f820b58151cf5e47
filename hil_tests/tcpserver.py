"""A Modbus TCP device made of pymodbus' own server, holding a GreenEdge
profile's register image (identity, defaults): the TCP peer for the service
tests and the service benchmark. Units 1..N serve the same image.

Run: python -m hil_tests.tcpserver PROFILE UNITS PORT  (prints "ready")
"""

import contextlib
import logging
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def image(profile):
    from controller.registers import point_map
    from firmware import regmap
    ir, hr, di, co = [0] * 300, [0] * 300, [0] * 64, [0] * 64
    ir[0], ir[1], ir[2] = regmap.MAP_VERSION, regmap.PROFILE_IDS[profile], 0x0100
    for k in range(16, 20):
        ir[k] = 0  # every quality slot good
    for p in point_map(profile).values():
        if p.default is not None and p.table == regmap.HOLDING:
            for i, w in enumerate(p.encode(p.default)):
                hr[p.address + i] = w
        if p.table == regmap.INPUT and p.address >= 32 and p.count == 1 and p.type != "f32":
            hr_like = p.encode(0) if p.access == "rw" else regmap.encode(p.raw, 0)
            for i, w in enumerate(hr_like):
                ir[p.address + i] = w
    return ir, hr, di, co


def main():
    from pymodbus.datastore import (ModbusDeviceContext, ModbusSequentialDataBlock,
                                    ModbusServerContext)
    from pymodbus.server import StartTcpServer
    profile, units, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    ir, hr, di, co = image(profile)
    # Address 1 stores at protocol address 0 (pymodbus 3.16 offsets by one).
    devs = {u: ModbusDeviceContext(ir=ModbusSequentialDataBlock(1, ir),
                                   hr=ModbusSequentialDataBlock(1, hr),
                                   di=ModbusSequentialDataBlock(1, di),
                                   co=ModbusSequentialDataBlock(1, co))
            for u in range(1, units + 1)}
    print("ready", flush=True)
    StartTcpServer(ModbusServerContext(devices=devs, single=False), address=("127.0.0.1", port))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@contextlib.contextmanager
def serve_tcp(profile, units):
    """(host, port) of a server process serving units 1..units; stopped on exit."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-m", "hil_tests.tcpserver", profile,
                          str(units), str(port)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("pymodbus TCP server did not start")
        deadline = __import__("time").monotonic() + 10
        while True:  # ready is printed before the listen: wait for the socket
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if __import__("time").monotonic() > deadline:
                    raise
        yield "127.0.0.1", port
    finally:
        p.kill()
        p.wait()


if __name__ == "__main__":
    main()
