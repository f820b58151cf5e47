"""line: how much of an emulated 115200-baud RS-485 line the service's polling uses.

Three motor devices (the real firmware on the MicroPython unix port) on one
timed virtual line (11-bit characters, wire timing), 8N2 at 115200 on every
side. Each side in turn polls for WARM_S (discarded), then for its measured
window; the turns are repeated (rounds, the order rotated) so that a change of
load on a shared machine falls on all three alike:
- GreenEdge: the service's line master (controller/fieldbus/master.py) polling
  every device with its coalesced plan (fast, status and slow classes);
- expert peer: pymodbus' async serial client in one asyncio task reading the
  same blocks on the same schedule, back to back: the block list and the
  status/slow periods are taken from the same Device objects the master is
  given (planner.plan_reads), so they are the same blocks by construction;
  the master's reply timeout, no retries (an integrator who knows the map);
- naive peer: pymodbus' sync serial client reading one point per request.
Delivered data counts only successful, full replies: registers (holding and
input words) and bits (coils, discrete inputs) apart; exception replies,
garbled replies and timeouts are counted as such. Utilisation = the physical
wire time of the completed transactions (timing.transaction_s: request and
reply frames at 11 bits per character plus two 3.5-character silences) over
elapsed time: 1.0 is the line's physical limit.
"""

import asyncio
import logging
import os
import time

import pymodbus
from pymodbus.client import AsyncModbusSerialClient, ModbusSerialClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from controller.fieldbus import timing
from controller.fieldbus.device import Device
from controller.fieldbus.master import Line
from controller.registers import point_map
from controller.stats import quantile_ms
from firmware import regmap
from hil_tests.devices import DeviceProcess
from hil_tests.vline import VirtualLine

BAUD = 115200
PARITY, STOPBITS = "N", 2
BITS = timing.bits_per_char(PARITY, STOPBITS)
UNITS = (1, 2, 3)
WARM_S = 1.0
SLOW_S = 1.0
FC_OF = {regmap.COIL: 1, regmap.DISCRETE: 2, regmap.HOLDING: 3, regmap.INPUT: 4}


def _devices():
    return [Device("m%d" % u, u, "motor", slow_s=SLOW_S) for u in UNITS]


class _Count:
    """One side's statistics over its measured windows, counted as the
    master's LineStats counts them (el: the seconds measured)."""

    def __init__(self):
        self.tx = self.regs = self.bits = 0
        self.timeouts = self.exceptions = self.garbled = 0
        self.wire_s = self.el = 0.0
        self.lat = []

    def add(self, fc, count, r, lat_s):
        """One transaction: r is the reply or None (a timeout or no frame)."""
        if r is None:
            self.timeouts += 1
            return
        self.tx += 1
        self.lat.append(lat_s)
        self.wire_s += timing.transaction_s(fc, count, BAUD, BITS)
        if r.isError():
            self.exceptions += 1
        elif len(r.bits if fc <= 2 else r.registers) < count:
            self.garbled += 1
        elif fc <= 2:
            self.bits += count
        else:
            self.regs += count

    def merge(self, o):
        for k in ("tx", "regs", "bits", "timeouts", "exceptions", "garbled", "wire_s", "el"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        self.lat += o.lat

    def result(self, pre):
        el = self.el
        # gap: mean time per transaction outside the client's call (the
        # master's 3.5-character wait after a reply and its own work; timeouts)
        gap = el / self.tx - sum(self.lat) / len(self.lat)
        return {pre + "tx_per_s": round(self.tx / el, 1),
                pre + "registers_per_s": round(self.regs / el, 1),
                pre + "bits_per_s": round(self.bits / el, 1),
                pre + "utilisation": round(self.wire_s / el, 3),
                pre + "timeouts": self.timeouts, pre + "exceptions": self.exceptions,
                pre + "garbled": self.garbled, pre + "gap_ms": round(1000 * gap, 2),
                pre + "latency_p50_ms": round(quantile_ms(self.lat, 0.5), 2),
                pre + "latency_p99_ms": round(quantile_ms(self.lat, 0.99), 2)}


def _line(port):
    return Line("l", "rtu", _devices(), port=port, baud=BAUD, parity=PARITY, stopbits=STOPBITS)


async def _greenedge(port, seconds, timeout_s):
    line = _line(port)
    task = asyncio.create_task(line.run())
    await asyncio.sleep(WARM_S)
    line.stats.reset()
    await asyncio.sleep(seconds)
    st, n = line.stats, _Count()
    n.el = time.monotonic() - st.t0
    for k in ("tx", "regs", "bits", "timeouts", "exceptions", "garbled", "wire_s"):
        setattr(n, k, getattr(st, k))
    n.lat = list(st.lat)
    line.stop()
    await task
    return n


async def _expert(port, seconds, timeout_s):
    """The master's blocks and schedule by hand: every round each device's fast
    blocks, its status block every status_s, its slow blocks every slow_s."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    devs = _devices()
    c = AsyncModbusSerialClient(port, framer=FramerType.RTU, baudrate=BAUD, parity=PARITY,
                                stopbits=STOPBITS, timeout=timeout_s, retries=0,
                                reconnect_delay=0)
    await c.connect()
    fn = {1: c.read_coils, 2: c.read_discrete_inputs, 3: c.read_holding_registers,
          4: c.read_input_registers}
    due = {d.unit: [0.0, 0.0] for d in devs}  # next status, next slow
    n = _Count()
    t_meas = time.perf_counter() + WARM_S
    end = t_meas + seconds
    now = 0.0
    while now < end:
        for d in devs:
            now = time.perf_counter()
            if now >= end:
                break
            reads = list(d.fast)
            nxt = due[d.unit]
            if now >= nxt[0]:
                reads += d.status
                nxt[0] = now + d.status_s
            if now >= nxt[1]:
                reads += d.slow
                nxt[1] = now + d.slow_s
            for rd in reads:
                t0 = time.perf_counter()
                try:
                    r = await fn[rd.fc](rd.start, count=rd.count, device_id=d.unit)
                except (ModbusException, asyncio.TimeoutError):
                    r = None
                t1 = time.perf_counter()
                if t1 >= t_meas:  # what completes after the warm-up counts
                    n.add(rd.fc, rd.count, r, t1 - t0)
    n.el = time.perf_counter() - t_meas
    c.close()
    return n


def _naive(port, seconds, timeout_s):
    """One read per point, back to back."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    c = ModbusSerialClient(port, baudrate=BAUD, parity=PARITY, stopbits=STOPBITS,
                           timeout=timeout_s, retries=0)
    c.connect()
    pts = [p for p in point_map("motor").values() if p.count == 1]
    fn = {1: c.read_coils, 2: c.read_discrete_inputs, 3: c.read_holding_registers,
          4: c.read_input_registers}
    n = _Count()
    t_meas = time.perf_counter() + WARM_S
    end = t_meas + seconds
    now = 0.0
    while now < end:
        for u in UNITS:
            for p in pts:
                fc = FC_OF[p.table]
                t0 = time.perf_counter()
                try:
                    r = fn[fc](p.address, count=p.words, device_id=u)
                except ModbusException:  # a timeout
                    r = None
                now = time.perf_counter()
                if now >= t_meas:
                    n.add(fc, p.words, r, now - t0)
                if now >= end:
                    break
            if now >= end:
                break
    n.el = time.perf_counter() - t_meas
    c.close()
    return n


def run(quick=False):
    """Each side in turn, ROUNDS times (the order rotated each round), so a
    change of load on the shared machine falls on all three alike."""
    rounds, seconds = (1, 2.5) if quick else (3, 4.0)
    sides = [("", lambda p, s, t: asyncio.run(_greenedge(p, s, t))),
             ("expert_", lambda p, s, t: asyncio.run(_expert(p, s, t))),
             ("peer_", _naive)]
    tot = {pre: _Count() for pre, _ in sides}
    hits = dict.fromkeys(tot, 0)
    with VirtualLine(len(UNITS) + 1, BAUD) as vl:
        port = vl.ports[0]
        timeout_s = _line(port).timeout_s  # the master's, from its plan and the baud rate
        devs = [DeviceProcess("motor", u, vl.ports[u]) for u in UNITS]
        try:
            for k in range(rounds):
                for pre, side in sides[k:] + sides[:k]:
                    c0 = vl.stats()["collisions"]
                    tot[pre].merge(side(port, seconds, timeout_s))
                    hits[pre] += vl.stats()["collisions"] - c0
        finally:
            for d in devs:
                d.stop()
    res = {"window_s": rounds * seconds, "rounds": rounds, "warmup_s": WARM_S,
           "timeout_ms": round(1000 * timeout_s, 1), "loadavg_1min": round(os.getloadavg()[0], 2)}
    for pre, n in tot.items():
        res.update(n.result(pre))
        res[pre + "collisions"] = hits[pre]
    v = pymodbus.__version__
    res["expert"] = ("pymodbus %s AsyncModbusSerialClient, the master's blocks (plan_reads) on its"
                     " schedule, one task, no retries" % v)
    res["peer"] = "pymodbus %s ModbusSerialClient, one read per point" % v
    for pre in ("peer", "expert"):
        res["ratio_registers_per_s_vs_" + pre] = round(
            res["registers_per_s"] / res[pre + "_registers_per_s"], 2)
    return res


def report(r):
    line = ("  %-10s %4.0f tx/s, %5.0f registers/s, %4.0f bits/s, utilisation %3.0f %%,"
            " latency p50 %.2f ms p99 %.2f ms, %.2f ms between transactions,"
            " %d timeouts, %d exceptions, %d garbled")

    def side(name, pre):
        return line % (name, r[pre + "tx_per_s"], r[pre + "registers_per_s"], r[pre + "bits_per_s"],
                       100 * r[pre + "utilisation"], r[pre + "latency_p50_ms"],
                       r[pre + "latency_p99_ms"], r[pre + "gap_ms"], r[pre + "timeouts"],
                       r[pre + "exceptions"], r[pre + "garbled"])
    return "\n".join([
        "line benchmark: 3 firmware devices on an emulated 115200-baud line, %d x %.1f s per side"
        " (each after %.0f s of warm-up), load %.2f" % (r["rounds"], r["window_s"] / r["rounds"],
                                                       r["warmup_s"], r["loadavg_1min"]),
        "  expert: %s" % r["expert"],
        "  naive:  %s" % r["peer"],
        side("GreenEdge", ""), side("expert", "expert_"), side("naive", "peer_"),
        "  registers/s %.2fx the expert, %.1fx the naive peer"
        % (r["ratio_registers_per_s_vs_expert"], r["ratio_registers_per_s_vs_peer"]),
    ])
