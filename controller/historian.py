"""Historian: SQLite in WAL mode, written by its own thread.

The cycle hands rows to a queue and never waits on disk; the writer thread
commits every commit_s (default 1 s), so a `kill -9` loses at most that
interval and the database always opens clean (WAL). Tables:
    samples(t, tag, value, quality)     t: plant time in s; tag "device.point"
    events(t, wall, kind, source, text)  mode changes, device up/down, alarms
    kpis(t, name, value)                 accounting figures, latest per name
    audit(t, wall, who, role, kind, loop, target, old, new, accepted, reason)
                                         every command through the gate (JSON old/new)
Retention deletes samples older than retention_days of plant time.
"""

import csv
import json
import queue
import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (t REAL NOT NULL, tag TEXT NOT NULL, value REAL,
                                    quality INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS samples_tag_t ON samples (tag, t);
CREATE TABLE IF NOT EXISTS events (t REAL NOT NULL, wall REAL NOT NULL, kind TEXT NOT NULL,
                                   source TEXT, text TEXT);
CREATE TABLE IF NOT EXISTS kpis (t REAL NOT NULL, name TEXT NOT NULL, value REAL);
CREATE INDEX IF NOT EXISTS kpis_name_t ON kpis (name, t);
CREATE TABLE IF NOT EXISTS audit (t REAL NOT NULL, wall REAL NOT NULL, who TEXT NOT NULL,
                                  role TEXT, kind TEXT NOT NULL, loop TEXT, target TEXT,
                                  old TEXT, new TEXT, accepted INTEGER NOT NULL, reason TEXT);
"""


def connect(path, readonly=False):
    path = Path(path)
    if readonly:
        if not path.exists():
            raise FileNotFoundError("historian database %s not found" % path)
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=5, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
    return db


class Historian:
    def __init__(self, path, commit_s=1.0, retention_days=90.0):
        self.path = Path(path)
        self.commit_s = commit_s
        self.retention_s = retention_days * 86400.0
        self.db = connect(self.path)
        self.q = queue.SimpleQueue()
        self.rows_written = 0
        self.commits = 0
        self.last_commit_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._writer, name="historian", daemon=True)
        self._thread.start()

    # ---- called from the cycle (never blocks on disk) -------------------------
    def samples(self, t_s, rows):
        """rows: [(tag, value, quality)]"""
        self.q.put(("s", t_s, rows))

    def event(self, t_s, kind, source, text=""):
        self.q.put(("e", t_s, (time.time(), kind, source, text)))

    def kpis(self, t_s, values):
        self.q.put(("k", t_s, values))

    def audit(self, rec):
        """One command-gate record (runtime/gate.py)."""
        row = (rec["wall"], rec["who"], rec["role"], rec["kind"], rec["loop"], rec["target"],
               json.dumps(rec["old"]), json.dumps(rec["new"]), int(bool(rec["accepted"])),
               rec["reason"])
        self.q.put(("a", rec["t_s"], row))

    # ---- writer thread ----------------------------------------------------------
    def _drain(self):
        cur = self.db.cursor()
        n = 0
        t_max = None
        while True:
            try:
                kind, t, payload = self.q.get_nowait()
            except queue.Empty:
                break
            t_max = t if t_max is None else max(t_max, t)
            if kind == "s":
                cur.executemany("INSERT INTO samples VALUES (?,?,?,?)",
                                [(t, tag, v, q) for tag, v, q in payload])
                n += len(payload)
            elif kind == "e":
                cur.execute("INSERT INTO events VALUES (?,?,?,?,?)", (t,) + payload)
                n += 1
            elif kind == "a":
                cur.execute("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?)", (t,) + payload)
                n += 1
            else:
                cur.executemany("INSERT INTO kpis VALUES (?,?,?)",
                                [(t, k, v) for k, v in payload.items()])
                n += len(payload)
        if n:
            t0 = time.perf_counter()
            self.db.commit()
            self.last_commit_s = time.perf_counter() - t0
            self.rows_written += n
            self.commits += 1
        return t_max

    def _writer(self):
        last_retention = time.monotonic()
        while not self._stop.wait(self.commit_s):
            t = self._drain()
            if t is not None and time.monotonic() - last_retention > 60:
                self.db.execute("DELETE FROM samples WHERE t < ?", (t - self.retention_s,))
                self.db.commit()
                last_retention = time.monotonic()
        self._drain()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=10)
        self.db.close()


def export_csv(db_path, out, t_from=None, t_to=None, tags=None):
    """Write samples (plant time t_s, tag, value, quality) as CSV; returns the row count."""
    db = connect(db_path, readonly=True)
    sql = "SELECT t, tag, value, quality FROM samples WHERE 1=1"
    args = []
    if t_from is not None:
        sql += " AND t >= ?"
        args.append(t_from)
    if t_to is not None:
        sql += " AND t <= ?"
        args.append(t_to)
    if tags:
        sql += " AND tag IN (%s)" % ",".join("?" * len(tags))
        args += list(tags)
    sql += " ORDER BY t, tag"
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["t_s", "tag", "value", "quality"])
    n = 0
    for row in db.execute(sql, args):
        w.writerow(row)
        n += 1
    db.close()
    return n


def latest_kpis(db_path):
    db = connect(db_path, readonly=True)
    rows = db.execute("SELECT name, value FROM kpis k WHERE t = "
                      "(SELECT MAX(t) FROM kpis WHERE name = k.name)").fetchall()
    db.close()
    return dict(rows)
