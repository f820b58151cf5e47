"""modbus: the firmware device's turnaround and throughput on an emulated line.

Both devices sit on their own timed virtual line (115200 baud, 11-bit chars):
- GreenEdge: the real firmware on the MicroPython unix port (motor profile, 64 KB heap);
- peer: a plain pymodbus serial server (the named peer) on the same kind of line.
The same pymodbus sync client reads 10 registers (input 32..41) and 100 registers
(input 128..227) from each. Turnaround (end of the request on the wire to the first
reply byte leaving the device) comes from the line's own log, so it is what a
line analyser would see; transactions/s are wall-clock at the host.
Physical limit per transaction: request + reply bytes at 11 bits each plus two
3.5-character gaps (1.75 ms each above 19200 baud); turnaround is also given as a
ratio to that 3.5-character floor (a conformant device never answers sooner).

Inside the firmware (same unix port, 64 KB heap, no line): the frame handler's
time for a 10- and a 100-register read (RtuServer.handle on a complete request,
reply checked by length) and one supervisor tick (Supervisor.tick), each the
mean over a few thousand calls.
"""

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymodbus.client import ModbusSerialClient

from controller import mpvm
from controller.fieldbus import timing
from hil_tests.devices import DeviceProcess
from hil_tests.vline import VirtualLine

BAUD = 115200


def limit_tx_per_s(n_regs):
    return 1.0 / timing.transaction_s(3, n_regs, BAUD)


def _pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))
    return xs[k]


FIRMWARE_BENCH = r'''
import time
from device import Device
from rtuframe import crc16
d = Device({"profile": "motor", "comm_loss_timeout_s": None, "model": "", "hal": "unix",
            "unit": 1, "baud": 115200}, None)
def frame(fc, addr, qty):
    b = bytearray([1, fc, addr >> 8, addr & 255, qty >> 8, qty & 255])
    c = crc16(b, 6)
    b.append(c & 255)
    b.append(c >> 8)
    return b
def per(fr, n, want):
    d.rtu.rx[:len(fr)] = fr
    h, k = d.rtu.handle, len(fr)
    t = time.ticks_us()
    for _ in range(n):
        r = h(k)
    dt = time.ticks_diff(time.ticks_us(), t)
    if r != want:
        raise SystemExit("reply of %d bytes, expected %d" % (r, want))
    return dt * 1000 // n
print("RESULT", per(frame(4, 32, 10), N, 25), per(frame(4, 128, 100), N // 2, 205), end=" ")
now = time.ticks_ms()
t = time.ticks_us()
for i in range(N):
    d.sup.tick(now + 50 * i)
print(time.ticks_diff(time.ticks_us(), t) * 1000 // N)
'''


def firmware_times(n):
    """(handler ns for 10 registers, for 100, supervisor tick ns) on the unix port."""
    env = dict(os.environ, MICROPYPATH="%s:.frozen" % mpvm.unix_build())
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write("N = %d\n" % n + FIRMWARE_BENCH)
    try:
        r = subprocess.run(mpvm.find_micropython() + ["-X", "heapsize=64K", f.name], env=env,
                           capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(f.name)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT")]
    if r.returncode or not line:
        raise RuntimeError("firmware timing failed: %s" % (r.stdout + r.stderr)[-2000:])
    return [int(x) for x in line[0].split()[1:]]


def _turnarounds(log_path, t0, t1):
    """Device turnaround per transaction in [t0, t1], from the line log (seconds)."""
    out = []
    last_req_end = None
    with open(log_path) as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("ev") != "tx" or not t0 <= ev["rx"] <= t1:
                continue
            if ev["src"] == 0:
                last_req_end = ev["end"]
            elif last_req_end is not None:
                out.append(ev["rx"] - last_req_end)
                last_req_end = None
    return out


def _phase(client, unit, addr, count, n):
    for _ in range(10):
        client.read_input_registers(addr, count=count, device_id=unit)
    t0 = time.perf_counter()
    for _ in range(n):
        r = client.read_input_registers(addr, count=count, device_id=unit)
        if r.isError():
            raise RuntimeError("benchmark read failed: %s" % r)
    t1 = time.perf_counter()
    return t0, t1, n / (t1 - t0)


def _measure(line, log_path, unit, addr10, addr100, n10, n100):
    client = ModbusSerialClient(line.ports[0], baudrate=BAUD, timeout=0.5, retries=0)
    if not client.connect():
        raise RuntimeError("cannot open %s" % line.ports[0])
    try:
        a0, a1, tps10 = _phase(client, unit, addr10, 10, n10)
        b0, b1, tps100 = _phase(client, unit, addr100, 100, n100)
    finally:
        client.close()
    line.stats()  # flushes the line log
    ta = _turnarounds(log_path, a0, a1) + _turnarounds(log_path, b0, b1)
    return {"tx_per_s_10": tps10, "tx_per_s_100": tps100,
            "turnaround_p50_ms": 1000 * _pct(ta, 50), "turnaround_p99_ms": 1000 * _pct(ta, 99),
            "turnaround_max_ms": 1000 * max(ta), "samples": len(ta)}


def run(quick=False):
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    n10, n100 = (100, 50) if quick else (600, 250)
    tmp = Path(tempfile.mkdtemp(prefix="ge-bench-"))
    log_a, log_b = tmp / "greenedge.jsonl", tmp / "peer.jsonl"
    with VirtualLine(2, baud=BAUD, log_path=log_a) as line, \
            DeviceProcess("motor", 1, line.ports[1]):
        ge = _measure(line, log_a, 1, 32, 128, n10, n100)
    peer_script = Path(__file__).resolve().parent / "peers" / "pymodbus_rtu_server.py"
    with VirtualLine(2, baud=BAUD, log_path=log_b) as line:
        peer = subprocess.Popen([sys.executable, str(peer_script), line.ports[1], str(BAUD)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            if "ready" not in peer.stdout.readline():
                raise RuntimeError("pymodbus peer server did not start")
            time.sleep(0.5)  # the server opens the port after printing ready
            pe = _measure(line, log_b, 1, 0, 0, n10, n100)
        finally:
            peer.kill()
            peer.wait()
    res = {
        "turnaround_p50_ms": round(ge["turnaround_p50_ms"], 3),
        "turnaround_p99_ms": round(ge["turnaround_p99_ms"], 3),
        "turnaround_max_ms": round(ge["turnaround_max_ms"], 3),
        "tx_per_s_10": round(ge["tx_per_s_10"], 1),
        "tx_per_s_100": round(ge["tx_per_s_100"], 1),
        "peer": "pymodbus %s ModbusSerialServer" % __import__("pymodbus").__version__,
        "peer_turnaround_p50_ms": round(pe["turnaround_p50_ms"], 3),
        "peer_turnaround_p99_ms": round(pe["turnaround_p99_ms"], 3),
        "peer_tx_per_s_10": round(pe["tx_per_s_10"], 1),
        "peer_tx_per_s_100": round(pe["tx_per_s_100"], 1),
        "limit_tx_per_s_10": round(limit_tx_per_s(10), 1),
        "limit_tx_per_s_100": round(limit_tx_per_s(100), 1),
        "baud": BAUD,
        "transactions": {"10": n10, "100": n100},
    }
    res["ratio_tx_per_s_10_vs_peer"] = round(res["tx_per_s_10"] / res["peer_tx_per_s_10"], 2)
    res["ratio_tx_per_s_100_vs_peer"] = round(res["tx_per_s_100"] / res["peer_tx_per_s_100"], 2)
    res["ratio_turnaround_p99_peer_vs_greenedge"] = round(
        res["peer_turnaround_p99_ms"] / res["turnaround_p99_ms"], 2)
    t35 = 1000 * timing.silence_s(BAUD)
    res["t35_ms"] = round(t35, 3)
    for k in ("turnaround_p50_ms", "turnaround_p99_ms", "peer_turnaround_p50_ms",
              "peer_turnaround_p99_ms"):
        res[k.replace("_ms", "_vs_t35")] = round(res[k] / t35, 2)
    h10, h100, sup = firmware_times(500 if quick else 5000)
    res["handler_us_10"], res["handler_us_100"] = round(h10 / 1000, 1), round(h100 / 1000, 1)
    res["supervisor_tick_us"] = round(sup / 1000, 1)
    res["utilisation_10"] = round(res["tx_per_s_10"] / res["limit_tx_per_s_10"], 3)
    res["utilisation_100"] = round(res["tx_per_s_100"] / res["limit_tx_per_s_100"], 3)
    return res


def report(r):
    return "\n".join([
        "modbus RTU device at %d baud (emulated line), pymodbus sync client" % r["baud"],
        "                     GreenEdge fw   %s" % r["peer"],
        "turnaround p50 ms    %8.3f       %8.3f" % (r["turnaround_p50_ms"], r["peer_turnaround_p50_ms"]),
        "turnaround p99 ms    %8.3f       %8.3f" % (r["turnaround_p99_ms"], r["peer_turnaround_p99_ms"]),
        "tx/s, 10 registers   %8.1f       %8.1f   (limit %.1f)" % (r["tx_per_s_10"], r["peer_tx_per_s_10"], r["limit_tx_per_s_10"]),
        "tx/s, 100 registers  %8.1f       %8.1f   (limit %.1f)" % (r["tx_per_s_100"], r["peer_tx_per_s_100"], r["limit_tx_per_s_100"]),
        "ratio tx/s vs peer   %.2fx (10)  %.2fx (100); p99 turnaround peer/greenedge %.2fx" % (
            r["ratio_tx_per_s_10_vs_peer"], r["ratio_tx_per_s_100_vs_peer"],
            r["ratio_turnaround_p99_peer_vs_greenedge"]),
        "turnaround / t3.5 (%.2f ms)   p50 %.2f  p99 %.2f   (peer %.2f / %.2f)" % (
            r["t35_ms"], r["turnaround_p50_vs_t35"], r["turnaround_p99_vs_t35"],
            r["peer_turnaround_p50_vs_t35"], r["peer_turnaround_p99_vs_t35"]),
        "firmware: frame handler %.1f us (10 registers), %.1f us (100); supervisor tick %.1f us"
        % (r["handler_us_10"], r["handler_us_100"], r["supervisor_tick_us"]),
    ])
