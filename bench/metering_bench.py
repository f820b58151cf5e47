"""metering: the viper metering kernel on the MicroPython unix port.

- native_vs_bytecode: per-sample-set cost of Meter.feed with the viper kernel
  against the same source compiled as plain bytecode (decorators and viper
  annotations stripped), same synthetic signal, same results checked equal.
- sample_sets_per_s: what a whole device (motor profile, the unix port's default
  device heap, mpvm.HEAP: 72 KB since the settings lock and the length-aware
  receiver; 64 KB before) sustains
  while a pymodbus client polls it back to back over the emulated line: the
  highest configured set rate (from a fixed ladder) whose backlog stays under one
  chunk, and the sets it processed per second there.
- heap_peak_bytes: the most the device's GC heap holds live (gc.mem_alloc after a
  collection, at each 5 s report) while sampling
  and serving, the largest seen over the ladder.
"""

import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from controller import mpvm
from hil_tests.devices import DeviceProcess
from hil_tests.vline import VirtualLine

KERNEL_BENCH = r'''
import time, math
from array import array
from metering import Meter
fs = 2400
m = Meter(fs)
buf = array("H", [0] * (6 * 64))
for k in range(64):
    for p in range(3):
        a = 2 * math.pi * 50 * k / fs - p * 2 * math.pi / 3
        buf[6 * k + p] = 2048 + int(1500 * math.sin(a))
        buf[6 * k + 3 + p] = 2048 + int(1000 * math.sin(a - 0.5))
n = 0
t = time.ticks_us()
while n < 64 * 600:
    m.feed(buf, 64)
    m.poll()
    n += 64
dt = time.ticks_diff(time.ticks_us(), t)
print("RESULT", dt * 1000 // n, m.st[32], m.st[34])
'''


def _run_kernel(build_dir):
    env = dict(os.environ, MICROPYPATH="%s:.frozen" % build_dir)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(KERNEL_BENCH)
    r = subprocess.run(mpvm.find_micropython() + ["-X", "heapsize=1M", f.name], env=env,
                       capture_output=True, text=True, timeout=300)
    os.unlink(f.name)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT")]
    if not line:
        raise RuntimeError("kernel bench failed: %s" % (r.stdout + r.stderr))
    _, ns, a, b = line[0].split()
    return int(ns), (a, b)


def _bytecode_build():
    src = (mpvm.FIRMWARE_DIR / "metering.py").read_text()
    src = re.sub(r"^@micropython\.viper\n", "", src, flags=re.M)
    src = re.sub(r": ptr(8|16|32)", "", src)
    src = re.sub(r"(\w+): int([,)])", r"\1\2", src)
    src = src.replace(") -> int:", "):")
    d = Path(tempfile.mkdtemp(prefix="ge-bytecode-"))
    (d / "metering.py").write_text(src)
    return d


def _device_rate(rate):
    """(sustained, sets_per_s, heap_peak) for a device sampling at rate while polled."""
    from pymodbus.client import ModbusSerialClient
    with VirtualLine(2) as line, DeviceProcess("motor", 1, line.ports[1], heap=mpvm.HEAP,
                                               extra=["--metering", "2", "--set-rate", str(rate)]) as dev:
        c = ModbusSerialClient(line.ports[0], baudrate=115200, timeout=0.5, retries=0)
        c.connect()
        stop = threading.Event()
        polls = [0]

        def poll():
            while not stop.is_set():
                c.read_input_registers(32, count=15, device_id=1)
                polls[0] += 1

        th = threading.Thread(target=poll, daemon=True)
        th.start()
        lines = [dev.wait_line("metering:", 7.0), dev.wait_line("metering:", 7.0)]
        stop.set()
        th.join(5)
        c.close()
    found = [re.search(r"(\d+) sets in (\d+) ms, backlog (\d+) sets, heap live (\d+) of", ln)
             for ln in lines if ln]
    if not found:
        return False, 0.0, 0, polls[0]
    sets, ms, backlog, _live = (int(x) for x in found[-1].groups())
    peak = max(int(m.group(4)) for m in found)
    return backlog < 64, sets * 1000.0 / ms, peak, polls[0]


def run(quick=False):
    build = mpvm.unix_build()
    viper_ns, viper_res = _run_kernel(build)
    bc_ns, bc_res = _run_kernel(_bytecode_build())
    if viper_res != bc_res:
        raise RuntimeError("bytecode and viper kernels disagree: %s vs %s" % (bc_res, viper_res))
    ladder = (2400, 6000) if quick else (2400, 6000, 12000, 20000)
    best = None
    limit = None
    for rate in ladder:
        try:
            ok, sps, peak, polls = _device_rate(rate)
        except RuntimeError as e:  # e.g. the wave buffer no longer fits the heap
            limit = "%d sets/s: %s" % (rate, str(e).strip().splitlines()[-1])
            break
        if ok:
            best = (rate, sps, peak, polls)
        else:
            break
    if best is None:
        raise RuntimeError("the metering device does not run at %d sets/s in %s: %s"
                           % (ladder[0], mpvm.HEAP, limit or "backlog grew"))
    return {
        "ns_per_set_viper": viper_ns,
        "ns_per_set_bytecode": bc_ns,
        "native_vs_bytecode": round(bc_ns / viper_ns, 1),
        "sample_sets_per_s": round(best[1]) if best else 0,
        "configured_set_rate": best[0] if best else 0,
        "modbus_polls_during_run": best[3] if best else 0,
        "heap_peak_bytes": best[2] if best else None,
        "heap_bytes": int(mpvm.HEAP.rstrip("K")) * 1024,
        "platform": "MicroPython unix port (x64 viper)",
        "stopped_at": limit,
    }


def report(r):
    return "\n".join([
        "metering kernel per sample set: viper %d ns, bytecode %d ns -> %.1fx" % (
            r["ns_per_set_viper"], r["ns_per_set_bytecode"], r["native_vs_bytecode"]),
        "device sustained %d sets/s (configured %d) while serving %d Modbus polls" % (
            r["sample_sets_per_s"], r["configured_set_rate"], r["modbus_polls_during_run"]),
        "heap peak %s bytes of %d" % (r["heap_peak_bytes"], r["heap_bytes"]),
    ])
