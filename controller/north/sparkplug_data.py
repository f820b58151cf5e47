"""Sparkplug B metrics and the store-and-forward buffer of the edge node
(controller/north/sparkplug.py).

    datatype_name(point)   the Sparkplug datatype of a register-map point
    build_metrics(...)     a config's device and node metrics (loops, KPIs, alarms),
                           writable commands
    make_metric(...)       one metric (pysparkplug) with engUnit / Quality properties
    Buffer                 store-and-forward rows in SQLite, bounded, oldest dropped

Quality is the OPC DA code Sparkplug hosts read as the "Quality" property: 192
good, 64 uncertain (NE43 uncertain), 0 bad (NE43 bad, stale, device down).
"""

import math
import sqlite3

from controller.errors import UserError
from controller.registers import point_map
from firmware import regmap

QUALITY = {regmap.Q_GOOD: 192, regmap.Q_UNCERTAIN: 64}   # anything else: 0 (bad)
BAD = 0
REBIRTH = "Node Control/Rebirth"
ALARMS_ACTIVE = "Alarms/Active"
INT_TYPES = {"u16": "UINT16", "u32": "UINT32", "i16": "INT16", "i32": "INT32"}


def datatype_name(p):
    if p.type == "bit":
        return "BOOLEAN"
    if p.type == "f32" and p.scale == 1:
        return "FLOAT"
    if p.scale == 1 and p.type in INT_TYPES:
        return INT_TYPES[p.type]
    return "DOUBLE"


class Buffer:
    """Store-and-forward rows in SQLite: (device, name, datatype, value, quality,
    ts_ms), oldest first, at most max_rows (then the oldest are dropped, counted)."""

    def __init__(self, path, max_rows):
        self.path, self.max_rows = path, int(max_rows)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS buf (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                        "device TEXT, name TEXT, dtype INTEGER, value, quality INTEGER, "
                        "ts_ms INTEGER)")
        self.db.commit()
        self.rows = self.db.execute("SELECT COUNT(*) FROM buf").fetchone()[0]
        self.stored = 0
        self.dropped = 0

    def put(self, rows):
        if not rows:
            return 0
        self.db.executemany("INSERT INTO buf (device, name, dtype, value, quality, ts_ms) "
                            "VALUES (?, ?, ?, ?, ?, ?)", rows)
        self.rows += len(rows)
        self.stored += len(rows)
        over = self.rows - self.max_rows
        if over > 0:
            self.db.execute("DELETE FROM buf WHERE id IN (SELECT id FROM buf ORDER BY id "
                            "LIMIT ?)", (over,))
            self.rows -= over
            self.dropped += over
        self.db.commit()
        return max(over, 0)

    def head(self, n):
        return self.db.execute("SELECT id, device, name, dtype, value, quality, ts_ms FROM buf "
                               "ORDER BY id LIMIT ?", (n,)).fetchall()

    def delete_upto(self, last_id):
        n = self.db.execute("DELETE FROM buf WHERE id <= ?", (last_id,)).rowcount
        self.rows -= n
        self.db.commit()

    def close(self):
        self.db.close()


def build_metrics(sp, cfg, mq, kpi_keys):
    """The metric tables of a config: ({device: {point: (DataType, unit)}},
    {node metric: DataType}, {node metric: (gate kind, loop, arg)} for the
    writable ones, {device: (loop, role)}); UserError for a bad [mqtt] writable."""
    from controller.north.opcua import _loop_points
    DT = sp.DataType
    dev_metrics = {}        # device -> {point: (DataType, unit)}
    for dn, dc in cfg.devices.items():
        dev_metrics[dn] = {p.name: (getattr(DT, datatype_name(p)), p.unit)
                                for p in point_map(dc.profile).values() if p.count == 1}
    node_metrics = {REBIRTH: DT.BOOLEAN}
    loop_cmd = {}           # node metric -> (gate kind, loop, arg)
    for ln, lc in cfg.loops.items():
        s = "Loops/%s/" % ln
        node_metrics[s + "Mode"] = DT.STRING
        loop_cmd[s + "Mode"] = ("mode", ln, None)
        node_metrics[s + "State"] = DT.STRING
        node_metrics[s + "Errors"] = DT.UINT32
        sps, ops, _ = _loop_points(cfg, lc)
        for k in sps:
            node_metrics[s + "SP/" + k] = DT.DOUBLE
            loop_cmd[s + "SP/" + k] = ("setpoint", ln, k)
        for role, pt in ops:
            node_metrics[s + "OP/%s.%s" % (role, pt)] = DT.DOUBLE
            loop_cmd[s + "OP/%s.%s" % (role, pt)] = ("output", ln, (role, pt))
    for k in kpi_keys:
        node_metrics["KPIs/" + k] = DT.DOUBLE
    alarms = getattr(cfg, "alarms", None)
    if alarms is not None:
        node_metrics[ALARMS_ACTIVE] = DT.UINT32
        for aid in alarms.defs:
            node_metrics[alarm_metric(aid, "State")] = DT.STRING
            node_metrics[alarm_metric(aid, "Priority")] = DT.UINT32
    # a device point written by DCMD goes to the loop that drives the device
    dev_loop = {}
    for ln, lc in cfg.loops.items():
        for role, dn in lc.devices.items():
            dev_loop.setdefault(dn, (ln, role))
    for w in mq["writable"]:
        dn, _, pt = w.partition("/")
        if w in loop_cmd:
            continue
        if dn in dev_metrics and pt in dev_metrics[dn]:
            p = point_map(cfg.devices[dn].profile)[pt]
            if p.access != "rw" or dn not in dev_loop:
                raise UserError("mqtt writable %r: %s is not a writable output of a loop"
                                % (w, pt))
            continue
        raise UserError("mqtt writable %r: no such metric (loop metrics: Loops/<loop>/Mode, "
                        ".../SP/<key>, .../OP/<role>.<point>; device metrics: "
                        "<device>/<point>)" % w)
    return dev_metrics, node_metrics, loop_cmd, dev_loop


def alarm_metric(aid, what):
    """Alarms/<alarm id>/State (the ISA-18.2 state) or .../Priority (1..4)."""
    return "Alarms/%s/%s" % (aid, what)


def make_metric(sp, name, dtype, value, ts_ms, quality=None, unit=None,
                historical=False):
    """A metric for pysparkplug: the value in its datatype's Python type (None,
    NaN or the wrong type: is_null), engUnit and Quality as properties."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        value = None
    elif dtype == sp.DataType.BOOLEAN:
        value = bool(value)
    elif dtype == sp.DataType.STRING:
        value = str(value)
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        value = None
    elif dtype in (sp.DataType.FLOAT, sp.DataType.DOUBLE):
        value = float(value)
    else:
        value = int(round(value))
    props = []
    if unit is not None:
        props.append(("engUnit", "STRING", unit))
    if quality is not None:
        props.append(("Quality", "INT32", quality))
    return _metric_class(sp)(timestamp=ts_ms, name=name, datatype=dtype, value=value,
                             is_null=value is None, is_historical=historical,
                             properties=tuple(props))


_METRIC = None


def _metric_class(sp):
    """pysparkplug's Metric with a PropertySet (engUnit, Quality): the library
    encodes every field but properties; the protobuf message it builds has them."""
    global _METRIC
    if _METRIC is not None:
        return _METRIC
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class PropMetric(sp.Metric):
        properties: tuple = ()

        def to_pb(self, include_dtype):
            pb = super().to_pb(include_dtype)
            for key, dtype, value in self.properties:
                pb.properties.keys.append(key)
                pv = pb.properties.values.add()
                pv.type = getattr(sp.DataType, dtype)
                if dtype == "STRING":
                    pv.string_value = value
                else:
                    pv.int_value = int(value)
            return pb
    _METRIC = PropMetric
    return PropMetric
