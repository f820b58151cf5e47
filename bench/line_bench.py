"""line: how much of an emulated 115200-baud RS-485 line the service's polling uses.

Three motor devices (the real firmware on the MicroPython unix port) on one
timed virtual line (11-bit characters, wire timing). For the same time:
- GreenEdge: the service's line master (controller/fieldbus/master.py) polling
  every device with its coalesced plan (fast, status and slow classes);
- peer: pymodbus' own serial client (sync) polling the same devices naively,
  one read per point, back to back as fast as it can.
Utilisation = the physical wire time of the completed transactions (request and
reply frames at 11 bits per character plus the two 3.5-character silences)
over elapsed time: 1.0 is the line's physical limit. registers_per_s counts
registers (and bits) delivered to the host.
"""

import asyncio
import logging
import time

from pymodbus.client import ModbusSerialClient

from controller.fieldbus import timing
from controller.fieldbus.device import Device
from controller.fieldbus.master import Line
from controller.registers import point_map
from firmware import regmap
from hil_tests.devices import DeviceProcess
from hil_tests.vline import VirtualLine

BAUD = 115200
UNITS = (1, 2, 3)


async def _greenedge(port, seconds):
    devs = [Device("m%d" % u, u, "motor", slow_s=1.0) for u in UNITS]
    line = Line("l", "rtu", devs, port=port, baud=BAUD, parity="N", stopbits=2)
    task = asyncio.create_task(line.run())
    await asyncio.sleep(1.0)
    line.stats.reset()
    await asyncio.sleep(seconds)
    snap = line.stats.snapshot()
    line.stop()
    await task
    return snap


def _peer(port, seconds):
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    c = ModbusSerialClient(port, baudrate=BAUD, timeout=0.1, retries=0)
    c.connect()
    pts = [p for p in point_map("motor").values() if p.count == 1]
    fn = {regmap.COIL: (c.read_coils, 1), regmap.DISCRETE: (c.read_discrete_inputs, 2),
          regmap.HOLDING: (c.read_holding_registers, 3), regmap.INPUT: (c.read_input_registers, 4)}
    tx = regs = 0
    wire = 0.0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for u in UNITS:
            for p in pts:
                f, fc = fn[p.table]
                try:
                    r = f(p.address, count=p.words, device_id=u)
                except Exception:  # a timeout: counts nothing
                    continue
                if not r.isError():
                    tx += 1
                    regs += p.words
                    wire += timing.transaction_s(fc, p.words, BAUD)
    el = time.perf_counter() - t0
    c.close()
    return {"tx_per_s": tx / el, "regs_per_s": regs / el, "utilisation": wire / el}


def run(quick=False):
    seconds = 4.0 if quick else 15.0
    with VirtualLine(len(UNITS) + 1, BAUD) as vl:
        devs = [DeviceProcess("motor", u, vl.ports[u]) for u in UNITS]
        try:
            g = asyncio.run(_greenedge(vl.ports[0], seconds))
            p = _peer(vl.ports[0], seconds)
        finally:
            for d in devs:
                d.stop()
    res = {"utilisation": round(g["utilisation"], 3), "peer_utilisation": round(p["utilisation"], 3),
           "tx_per_s": round(g["tx_per_s"], 1), "registers_per_s": round(g["regs_per_s"], 1),
           "peer_tx_per_s": round(p["tx_per_s"], 1), "peer_registers_per_s": round(p["regs_per_s"], 1),
           "timeouts": g["timeouts"], "latency_p50_ms": round(g["latency_p50_ms"], 2),
           "latency_p99_ms": round(g["latency_p99_ms"], 2),
           "peer": "pymodbus %s ModbusSerialClient, one read per point"
                   % __import__("pymodbus").__version__}
    res["ratio_registers_per_s_vs_peer"] = round(res["registers_per_s"] / res["peer_registers_per_s"], 2)
    return res


def report(r):
    return "\n".join([
        "line benchmark: 3 firmware devices on an emulated 115200-baud line (peer: %s)" % r["peer"],
        "  GreenEdge  %.0f tx/s, %.0f registers/s, utilisation %.0f %% of the physical limit"
        % (r["tx_per_s"], r["registers_per_s"], 100 * r["utilisation"]),
        "  peer       %.0f tx/s, %.0f registers/s, utilisation %.0f %%"
        % (r["peer_tx_per_s"], r["peer_registers_per_s"], 100 * r["peer_utilisation"]),
        "  registers/s %.1fx the peer; latency p50 %.2f ms, p99 %.2f ms, %d timeouts"
        % (r["ratio_registers_per_s_vs_peer"], r["latency_p50_ms"], r["latency_p99_ms"],
           r["timeouts"]),
    ])
