"""Virtual RS-485 line: N ordinary tty paths that talk to each other.

Each port is a pty pair; the bridge holds the master sides and hands out the
slave paths, so firmware, pymodbus or minimalmodbus open them like any serial
port. With two ports it is a null-modem; with more it is a multi-drop bus: what
one port sends reaches every other port.

Wire timing (on by default): a chunk sent at t occupies the line from
max(t, busy_until) for len * bits_per_char / baud seconds (11 bits: 8E1 or 8N2)
and is delivered when its last bit has passed. One busy-until time for the whole
line, because RS-485 is half duplex. Delivery is timed with perf_counter: sleep
in select() (microsecond timeout) to within SPIN_S, then spin.

Faults (set at start or at run time through the control pipe): byte corruption
rate, dropped-byte rate, a gap inserted inside chunks (splits frames), a muted
port (a device that stops answering), a deaf port (hears nothing; with muted,
a device cut off the bus), a dead line. Every injected fault is
logged with its time so tests can match what the host saw.

Run as a process (its timing must not share a GIL with the client under test):
    python -m hil_tests.vline --ports 3 --baud 115200 --log line.jsonl
prints one JSON line {"ports": [...]} when ready, then reads JSON commands on
stdin ({"cmd": "set", "corrupt_rate": 0.01}, {"cmd": "stats"}, {"cmd": "stop"}),
answering each with one JSON line. Use VirtualLine (below) from Python.
"""

import argparse
import heapq
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
import tty

SPIN_S = 0.0002  # spin this close to a delivery (select wakes within ~0.1 ms)
FAULT_KEYS = ("corrupt_rate", "drop_rate", "gap_rate", "gap_s", "dead", "muted", "deaf")


class Bridge:
    def __init__(self, n_ports, baud, bits_per_char=11, timing=True, log=None, seed=0):
        if n_ports < 2:
            raise ValueError("a line needs at least 2 ports, got %r" % n_ports)
        if baud <= 0:
            raise ValueError("baud must be positive, got %r" % baud)
        self.baud = baud
        self.char_s = bits_per_char / baud
        self.timing = timing
        self.masters = []
        self.slaves = []
        self.paths = []
        for _ in range(n_ports):
            m, s = os.openpty()
            tty.setraw(s)
            tty.setraw(m)
            os.set_blocking(m, False)
            self.masters.append(m)
            self.slaves.append(s)
            self.paths.append(os.ttyname(s))
        self.busy_until = 0.0
        self.pending = []  # heap of (due, seq, src, bytes)
        self.seq = 0
        self.rng = random.Random(seed)
        self.corrupt_rate = 0.0
        self.drop_rate = 0.0
        self.gap_rate = 0.0
        self.gap_s = 0.005
        self.dead = False
        self.muted = set()
        self.deaf = set()  # ports that hear nothing (with muted: a device cut off the bus)
        self.log = log
        self._last_src = -1
        self.stats = {"chunks": 0, "bytes": 0, "corrupted": 0, "dropped": 0,
                      "gaps": 0, "collisions": 0, "muted_chunks": 0, "dead_chunks": 0,
                      "deaf_deliveries": 0}

    def set_faults(self, **kw):
        for k, v in kw.items():
            if k not in FAULT_KEYS:
                raise ValueError("unknown fault %r (known: %s)" % (k, ", ".join(FAULT_KEYS)))
            if k in ("muted", "deaf"):
                setattr(self, k, set(int(p) for p in v))
            elif k == "dead":
                self.dead = bool(v)
            else:
                v = float(v)
                if v < 0 or (k.endswith("rate") and v > 1):
                    raise ValueError("fault %s=%r out of range" % (k, v))
                setattr(self, k, v)
        self._log({"ev": "faults", **{k: (sorted(getattr(self, k)) if k in ("muted", "deaf")
                                          else getattr(self, k))
                                      for k in FAULT_KEYS}})

    def _log(self, rec):
        if self.log is not None:
            rec["t"] = time.perf_counter()
            self.log.write(json.dumps(rec) + "\n")

    def _inject(self, src, data, now):
        if src in self.muted:
            self.stats["muted_chunks"] += 1
            self._log({"ev": "muted", "src": src, "n": len(data)})
            return []
        if self.dead:
            self.stats["dead_chunks"] += 1
            self._log({"ev": "dead", "src": src, "n": len(data)})
            return []
        out = bytearray()
        for b in data:
            if self.drop_rate and self.rng.random() < self.drop_rate:
                self.stats["dropped"] += 1
                self._log({"ev": "drop", "src": src})
                continue
            if self.corrupt_rate and self.rng.random() < self.corrupt_rate:
                b ^= 1 << self.rng.randrange(8)
                self.stats["corrupted"] += 1
                self._log({"ev": "corrupt", "src": src})
            out.append(b)
        if not out:
            return []
        if self.gap_rate and len(out) > 1 and self.rng.random() < self.gap_rate:
            cut = self.rng.randrange(1, len(out))
            self.stats["gaps"] += 1
            self._log({"ev": "gap", "src": src, "at": cut, "gap_s": self.gap_s})
            return [(bytes(out[:cut]), 0.0), (bytes(out[cut:]), self.gap_s)]
        return [(bytes(out), 0.0)]

    def on_rx(self, src, data, now):
        self.stats["chunks"] += 1
        self.stats["bytes"] += len(data)
        if self.timing and now < self.busy_until - 1e-6 and self._last_src != src:
            self.stats["collisions"] += 1
            self._log({"ev": "collision", "src": src})
        self._last_src = src
        for part, gap in self._inject(src, data, now):
            start = max(now, self.busy_until) + gap
            end = start + len(part) * self.char_s if self.timing else now
            self.busy_until = end
            self._log({"ev": "tx", "src": src, "rx": now, "start": start, "end": end,
                       "n": len(part)})
            heapq.heappush(self.pending, (end, self.seq, src, part))
            self.seq += 1

    def deliver_due(self, now):
        while self.pending and self.pending[0][0] <= now:
            _, _, src, part = heapq.heappop(self.pending)
            for i, m in enumerate(self.masters):
                if i != src and i not in self.deaf:
                    try:
                        os.write(m, part)
                    except OSError:
                        pass  # nobody has that port open: bytes fall off the line

    def run(self, control_fd=None, reply=None):
        # select() takes a timeout in microseconds (poll() only in ms): the
        # bridge sleeps until SPIN_S before the next delivery instead of
        # spinning through the last millisecond, and still sees every byte
        # that arrives meanwhile. The CPU it leaves is the devices' (a spinning
        # bridge starves them into missed replies on a small host).
        fds = list(self.masters) + ([control_fd] if control_fd is not None else [])
        ctl_buf = b""
        fd_index = {m: i for i, m in enumerate(self.masters)}
        while True:
            now = time.perf_counter()
            if self.pending:
                timeout = max(0.0, self.pending[0][0] - now - SPIN_S)
            else:
                timeout = 0.2
            ready, _, _ = select.select(fds, [], [], timeout)
            for fd in ready:
                if fd == control_fd:
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        return
                    ctl_buf += chunk
                    while b"\n" in ctl_buf:
                        line, ctl_buf = ctl_buf.split(b"\n", 1)
                        if self._control(line, reply) == "stop":
                            return
                    continue
                try:
                    data = os.read(fd, 4096)
                except (BlockingIOError, OSError):
                    data = None  # the slave side is closed (between client opens)
                if data:
                    self.on_rx(fd_index[fd], data, time.perf_counter())
                elif data is None:
                    time.sleep(0.0005)  # do not spin on a hung-up port
            self.deliver_due(time.perf_counter())

    def _control(self, line, reply):
        try:
            cmd = json.loads(line)
            name = cmd.pop("cmd")
            if name == "stop":
                out = {"ok": True}
            elif name == "set":
                self.set_faults(**cmd)
                out = {"ok": True}
            elif name == "stats":
                out = {"ok": True, **self.stats}
            else:
                raise ValueError("unknown command %r" % name)
        except (ValueError, KeyError, TypeError) as e:
            out = {"ok": False, "error": str(e)}
            name = None
        if self.log is not None:
            self.log.flush()
        if reply is not None:
            reply(out)
        return name


class VirtualLine:
    """A vline process, from Python: `with VirtualLine(3) as line: line.ports`."""

    def __init__(self, n_ports=2, baud=115200, timing=True, log_path=None, seed=0,
                 **faults):
        args = [sys.executable, "-m", "hil_tests.vline", "--ports", str(n_ports),
                "--baud", str(baud), "--seed", str(seed)]
        if not timing:
            args.append("--no-timing")
        if log_path:
            args += ["--log", str(log_path)]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, text=True, bufsize=1)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("virtual line did not start (exit %s)" % self.proc.poll())
        self.ports = json.loads(line)["ports"]
        self.baud = baud
        if faults:
            self.set(**faults)

    def command(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        out = json.loads(self.proc.stdout.readline())
        if not out.pop("ok"):
            raise ValueError(out["error"])
        return out

    def set(self, **faults):
        return self.command(cmd="set", **faults)

    def stats(self):
        return self.command(cmd="stats")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.command(cmd="stop")
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ports", type=int, default=2)
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--bits-per-char", type=int, default=11)
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--log")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    log = open(a.log, "w") if a.log else None
    try:
        br = Bridge(a.ports, a.baud, a.bits_per_char, not a.no_timing, log, a.seed)
    except ValueError as e:
        ap.error(str(e))

    def reply(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    reply({"ports": br.paths})
    try:
        br.run(sys.stdin.fileno(), reply)
    finally:
        if log:
            log.close()


if __name__ == "__main__":
    main()
