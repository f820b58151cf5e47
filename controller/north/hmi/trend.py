"""Trends, audit and export from the historian (controller/historian.py),
read on a read-only SQLite connection of their own (WAL: the writer thread
never waits on a reader), and the trend chart drawn here as SVG: no chart
library, nothing fetched by the browser.

Times are plant seconds (the historian's t). A trend is bucketed to at most
MAX_POINTS per tag (mean per bucket) so a 24 h range costs the same as 1 h.
"""

import io
import json
import math
import sqlite3
from xml.sax.saxutils import escape

from controller.historian import connect

MAX_POINTS = 600
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")


def series(db_path, tags, t_from, t_to):
    """{tag: [(t_s, value)]} bucketed means in [t_from, t_to] (buckets over the
    span the samples cover, so a short history is drawn at full resolution)."""
    out = {}
    db = connect(db_path, readonly=True)
    try:
        for tag in tags:
            first, last = db.execute("SELECT MIN(t), MAX(t) FROM samples WHERE tag = ? AND "
                                     "t >= ? AND t <= ?", (tag, t_from, t_to)).fetchone()
            if first is None:
                out[tag] = []
                continue
            bucket = max((last - first) / MAX_POINTS, 1e-3)
            rows = db.execute(
                "SELECT MIN(t), AVG(value) FROM samples WHERE tag = ? AND t >= ? AND t <= ? "
                "AND value IS NOT NULL GROUP BY CAST((t - ?) / ? AS INTEGER) ORDER BY 1",
                (tag, t_from, t_to, first, bucket)).fetchall()
            out[tag] = [(t, v) for t, v in rows if v is not None and math.isfinite(v)]
    finally:
        db.close()
    return out


def audit(db_path, limit=200):
    db = connect(db_path, readonly=True)
    db.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in db.execute(
            "SELECT * FROM audit ORDER BY t DESC, rowid DESC LIMIT ?", (int(limit),))]
    finally:
        db.close()
    for r in rows:
        for k in ("old", "new"):
            try:
                r[k] = json.loads(r[k]) if r[k] is not None else None
            except ValueError:
                pass
        r["accepted"] = bool(r["accepted"])
    return rows


def export_csv(db_path, tags, t_from, t_to):
    """CSV text (t_s, tag, value, quality) of these tags in [t_from, t_to]."""
    from controller.historian import export_csv as _export
    buf = io.StringIO()
    _export(db_path, buf, t_from, t_to, tags)
    return buf.getvalue()


def svg(data, limits, t_from, t_to, width=900, height=360, title=""):
    """The chart: one polyline per tag, dashed lines for limits, time axis in
    minutes before t_to."""
    ml, mr, mt, mb = 60, 170, 24, 36
    w, h = width - ml - mr, height - mt - mb
    vals = [v for pts in data.values() for _, v in pts] + [v for lims in limits.values()
                                                          for _, v in lims]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    span = max(t_to - t_from, 1e-9)

    def x(t):
        return ml + w * (t - t_from) / span

    def y(v):
        return mt + h * (1.0 - (v - lo) / (hi - lo))

    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
         'font-family="sans-serif" font-size="11">' % (width, height, width, height),
         '<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>' % (width, height),
         '<text x="%d" y="15" font-size="13">%s</text>' % (ml, escape(title)),
         '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>'
         % (ml, mt, w, h)]
    for i in range(6):
        v = lo + (hi - lo) * i / 5
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/>'
                 % (ml, ml + w, y(v), y(v)))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%.4g</text>' % (ml - 4, y(v) + 4, v))
    for i in range(7):
        t = t_from + span * i / 6
        o.append('<text x="%.1f" y="%d" text-anchor="middle">-%.0f min</text>'
                 % (x(t), mt + h + 16, (t_to - t) / 60.0))
    n_pts = 0
    for i, (tag, pts) in enumerate(data.items()):
        c = COLOURS[i % len(COLOURS)]
        if pts:
            o.append('<polyline class="series" data-tag="%s" fill="none" stroke="%s" '
                     'stroke-width="1.5" points="%s"/>'
                     % (escape(tag), c, " ".join("%.1f,%.1f" % (x(t), y(v)) for t, v in pts)))
        n_pts += len(pts)
        o.append('<text x="%d" y="%d" fill="%s">%s (%d)</text>'
                 % (ml + w + 8, mt + 14 * (i + 1), c, escape(tag), len(pts)))
        for j, (label, v) in enumerate(limits.get(tag, [])):
            o.append('<line class="limit" x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s" '
                     'stroke-dasharray="6,4"/>' % (ml, ml + w, y(v), y(v), c))
            o.append('<text x="%d" y="%.1f" fill="%s">%s %.4g</text>'
                     % (ml + w + 8, y(v) + 4, c, escape(label), v))
    if not n_pts:
        o.append('<text x="%d" y="%d" text-anchor="middle">no samples in this range</text>'
                 % (ml + w / 2, mt + h / 2))
    o.append("</svg>")
    return "\n".join(o)
