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


class DeviceProcess:
    def __init__(self, profile, unit, port, baud=115200, heap="72K", extra=(), ready_timeout_s=20,
                 nice=0):
        """nice: lower the device's CPU priority (a stand-in for a separate MCU
        should not take the host's CPU from the service under test)."""
        argv, env = mpvm.device_command(profile, unit, port, baud, heap, extra)
        self.argv = argv
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     preexec_fn=(lambda: os.nice(nice)) if nice else None)
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
