"""A field device as its line sees it (its read plan, latest values with their
read times, quality slots, health), the line's statistics, and the check
that a write reply confirms its write. State only: the line (master.py)
changes it, the runtime reads it."""

import math
import time
from collections import deque

from controller.fieldbus.planner import plan_reads, quality_index
from controller.registers import point_map
from controller.stats import quantile_ms
from firmware import regmap

BACKOFF_START_S = 1.0


class Device:
    """One Modbus device: its plan, its latest values and its health."""

    def __init__(self, name, unit, profile, poll_s=0.0, slow_s=5.0, extra=(), status_s=0.5):
        self.name, self.unit, self.profile = name, unit, profile
        self.points = point_map(profile)
        self.reads = plan_reads(profile, extra)
        self.fast = [r for r in self.reads if r.cls == "fast"]
        self.status = [r for r in self.reads if r.cls == "status"]
        self.slow = [r for r in self.reads if r.cls == "slow"]
        self.qslot = quality_index(profile)
        self.poll_s, self.slow_s, self.status_s = poll_s, slow_s, status_s
        self.next_status = 0.0
        self.wrote = False
        self.t_wrote = 0.0
        self.values = {}      # point -> value (engineering units)
        self.t_value = {}     # point -> time.monotonic() of the read
        self.quality = [regmap.Q_BAD] * (8 * regmap.QUALITY_WORDS)
        self.up = False
        self.ever_up = False
        self.fails = 0
        self.backoff_s = BACKOFF_START_S
        self.next_poll = 0.0
        self.next_slow = 0.0
        self.slow_done = False  # one full slow pass since it came up
        self.up_events = 0
        self.down_events = 0
        self.polls = 0
        self.uptime_seen = None  # (uptime_s, request sent, reply) of the last status read
        self.slow_refused_up = -1  # the up_events a refused slow block was reported for
        self.t_poll = -math.inf  # time.monotonic() of the last completed read

    def point_quality(self, name):
        k = self.qslot.get(name)
        return regmap.Q_GOOD if k is None else self.quality[k]


def echoes(r, w):
    """An FC15/FC16 reply confirms a write only if it echoes its start and count."""
    return getattr(r, "address", w.start) == w.start and \
        getattr(r, "count", len(w.values)) == len(w.values)


class LineStats:
    def __init__(self):
        self.tx = 0
        self.regs = 0  # holding/input registers delivered (stored from a full reply)
        self.bits = 0  # coils/discrete inputs delivered
        self.timeouts = 0
        self.garbled = 0
        self.exceptions = 0
        self.writes = 0
        self.line_downs = 0  # times the port was lost (or could not be opened)
        self.reopens = 0     # reopen attempts while it was lost
        self.wire_s = 0.0
        self.lat = deque(maxlen=4096)
        self.t0 = time.monotonic()

    def snapshot(self, limit_wire=True):
        el = max(1e-9, time.monotonic() - self.t0)
        lat = list(self.lat)
        return {"tx": self.tx, "tx_per_s": self.tx / el, "regs_per_s": self.regs / el,
                "bits_per_s": self.bits / el,
                "timeouts": self.timeouts,
                "garbled": self.garbled, "exceptions": self.exceptions, "writes": self.writes,
                "line_downs": self.line_downs, "reopens": self.reopens,
                "latency_p50_ms": quantile_ms(lat, 0.5), "latency_p99_ms": quantile_ms(lat, 0.99),
                "utilisation": (self.wire_s / el) if limit_wire else None}

    def reset(self):
        self.__init__()


