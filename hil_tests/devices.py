"""Firmware device processes on the MicroPython unix port, for the bench and tests.

DeviceProcess starts `micropython main.py --profile P --unit N --port TTY` from
the x64 .mpy build, waits (with a timeout) for its ready line, and always
stops it on exit. Output after the ready line is kept for post-mortems.
"""

import os
import select
import subprocess
import time

from controller import mpvm


REALTIME_PRIORITY = 10  # SCHED_FIFO, above every normal process


class DeviceProcess:
    def __init__(self, profile, unit, port, baud=115200, heap=None, extra=(), ready_timeout_s=20,
                 nice=0, realtime=False):
        """nice: lower the device's CPU priority (a stand-in for a separate MCU
        should not take the host's CPU from the service under test).
        realtime: run it under SCHED_FIFO, as a board owns its CPU: the host's
        load then cannot preempt it between a read and its timestamp (which
        makes two frames a silence apart look like one stream). Needs the
        right to (root or CAP_SYS_NICE); ValueError says so otherwise."""
        argv, env = mpvm.device_command(profile, unit, port, baud, heap, extra)
        self.argv = argv
        if realtime:
            try:
                os.sched_param(0)
                os.sched_get_priority_min(os.SCHED_FIFO)
            except (AttributeError, OSError) as e:
                raise ValueError("realtime device: SCHED_FIFO not available: %s" % e)

        def setup():
            if nice:
                os.nice(nice)
            if realtime:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))

        try:
            self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, bufsize=1,
                                         preexec_fn=setup if nice or realtime else None)
        except PermissionError as e:
            raise ValueError("realtime device: SCHED_FIFO refused (needs root or CAP_SYS_NICE):"
                             " %s" % e)
        self.banner = self._wait_ready(ready_timeout_s)

    def _wait_ready(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        lines = []
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if r:
                line = self.proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if "ready" in line:
                    return line.strip()
            elif self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("device did not start: %s\n%s" % (" ".join(self.argv), "".join(lines)))

    def wait_line(self, text, timeout_s):
        """The next output line containing text, or None after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.05)
            if r:
                line = self.proc.stdout.readline()
                if not line:
                    return None
                if text in line:
                    return line.strip()
        return None

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            out = self.proc.communicate(timeout=5)[0]
        except (subprocess.TimeoutExpired, ValueError):
            out = ""
        return out or ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
