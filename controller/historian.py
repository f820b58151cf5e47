"""Historian: SQLite in WAL mode, written by its own thread.

Size (332 lines): the writer thread, its bounded queue, retention and the readers of one
SQLite schema.

The cycle hands rows to a queue and never waits on disk; the writer thread
commits every commit_s (default 1 s), so a `kill -9` loses at most that
interval and the database always opens clean (WAL). Tables:
    samples(t, tag, value, quality)     t: plant time in s; tag "device.point"
    events(t, wall, kind, source, text)  mode changes, device up/down, alarms
    kpis(t, name, value)                 accounting figures, latest per name
    audit(t, wall, who, role, kind, loop, target, old, new, accepted, reason)
                                         every command through the gate (JSON old/new)
    alarms(t, wall, id, kind, condition, priority, old, new, value, who, reason,
           shelved_until, text)          every alarm state transition (controller/alarms)
    alarm_state(id, ...)                 the newest state per alarm (replaced at start)
Retention deletes rows of every table older than retention_days of plant
time (alarm_state keeps one row per defined alarm), and the oldest samples
while the file is over max_mb (sizing:
docs/operations.md). synchronous=FULL: a power cut loses at most the open
commit interval and never corrupts the database.
"""

import csv
import json
import sqlite3
import threading
import time
from collections import deque
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
CREATE TABLE IF NOT EXISTS alarms (t REAL NOT NULL, wall REAL NOT NULL, id TEXT NOT NULL,
                                   kind TEXT, condition TEXT, priority INTEGER, old TEXT,
                                   new TEXT NOT NULL, value REAL, who TEXT, reason TEXT,
                                   shelved_until REAL, text TEXT);
CREATE INDEX IF NOT EXISTS alarms_id_t ON alarms (id, t);
CREATE TABLE IF NOT EXISTS alarm_state (id TEXT PRIMARY KEY, t REAL, kind TEXT,
                                        condition TEXT, priority INTEGER, state TEXT NOT NULL,
                                        value REAL, t_active REAL, who TEXT, reason TEXT,
                                        shelved_until REAL, text TEXT);
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
        # FULL: every commit (one a second) is on disk when it returns, so a
        # power cut loses at most the rows of the open commit interval; NORMAL
        # in WAL mode may roll back commits since the last checkpoint.
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
    return db


BYTES_PER_ROW = 75  # a samples row with its index, measured (docs/operations.md)


def sizing(n_tags, sample_s, retention_days, max_mb):
    """(MB a day, MB over the retention, fits the budget) for n_tags sampled every sample_s."""
    per_day = n_tags * 86400.0 / sample_s * BYTES_PER_ROW / 1e6
    total = per_day * retention_days
    return per_day, total, total <= max_mb


class Historian:
    """The writer side. Bounded: at most MAX_SAMPLE_BATCHES sample batches and
    MAX_RECORDS events/audit/KPI records wait for the disk; past that the
    oldest sample batch goes first (counted in dropped_rows), records last.
    A write that fails (disk full, I/O error) is kept and retried every commit
    interval, the failure is reported in health() (the service raises an
    event) and the control cycle never notices. Retention deletes every table's
    rows older than retention_days of plant time, and the oldest samples while
    the database holds more than max_mb."""

    MAX_SAMPLE_BATCHES = 3600   # an hour of 1 s sampling waiting for the disk
    MAX_RECORDS = 100000

    def __init__(self, path, commit_s=1.0, retention_days=90.0, max_mb=2048.0):
        self.path = Path(path)
        self.commit_s = commit_s
        self.retention_s = retention_days * 86400.0
        self.max_bytes = max_mb * 1e6
        self.db = connect(self.path)
        self._lock = threading.Lock()
        self._samples = deque()
        self._records = deque()
        self._retry = []          # a batch whose commit failed, tried first next time
        self.rows_written = 0
        self.dropped_rows = 0
        self.pruned_rows = 0
        self.commits = 0
        self.last_commit_s = 0.0
        self.error = None         # the last write failure, None once writes succeed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._writer, name="historian", daemon=True)
        self._thread.start()

    # ---- called from the cycle (never blocks on disk) -------------------------
    def samples(self, t_s, rows):
        """rows: [(tag, value, quality)]"""
        with self._lock:
            if len(self._samples) >= self.MAX_SAMPLE_BATCHES:
                self.dropped_rows += len(self._samples.popleft()[2])
            self._samples.append(("s", t_s, rows))

    def _record(self, item):
        with self._lock:
            if len(self._records) >= self.MAX_RECORDS:
                self._records.popleft()
                self.dropped_rows += 1
            self._records.append(item)

    def event(self, t_s, kind, source, text=""):
        self._record(("e", t_s, (time.time(), kind, source, text)))

    def kpis(self, t_s, values):
        self._record(("k", t_s, values))

    def audit(self, rec):
        """One command-gate record (runtime/gate.py)."""
        row = (rec["wall"], rec["who"], rec["role"], rec["kind"], rec["loop"], rec["target"],
               json.dumps(rec["old"]), json.dumps(rec["new"]), int(bool(rec["accepted"])),
               rec["reason"])
        self._record(("a", rec["t_s"], row))

    def alarm(self, rec):
        """One alarm transition (controller/alarms/engine.py): a row of alarms and
        the alarm's row of alarm_state."""
        self._record(("l", rec["t_s"], rec))

    def alarm_sync(self, rows, t_s):
        """alarm_state replaced by these rows (the engine's definitions at start)."""
        self._record(("L", t_s, rows))

    def health(self):
        with self._lock:
            queued = sum(len(b[2]) for b in self._samples) + len(self._records)
        return {"rows_written": self.rows_written, "dropped_rows": self.dropped_rows,
                "pruned_rows": self.pruned_rows, "queued_rows": queued, "error": self.error,
                "commits": self.commits, "db_mb": round(self.size_bytes() / 1e6, 3)}

    # ---- writer thread ----------------------------------------------------------
    def size_bytes(self):
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def _take(self):
        with self._lock:
            batch = list(self._records) + list(self._samples)
            self._records.clear()
            self._samples.clear()
        return batch

    def _drain(self):
        batch = self._retry + self._take()
        self._retry = []
        if not batch:
            return None
        cur = self.db.cursor()
        n = 0
        t_max = None
        try:
            for kind, t, payload in batch:
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
                elif kind == "l":
                    r = payload
                    cur.execute("INSERT INTO alarms VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                (t, r["wall"], r["id"], r["kind"], r["condition"], r["priority"],
                                 r["old"], r["new"], r["value"], r["who"], r["reason"],
                                 r["shelved_until"], r["text"]))
                    cur.execute("UPDATE alarm_state SET t=?, state=?, value=?, who=?, reason=?, "
                                "shelved_until=?, t_active=CASE WHEN ? IN ('unacknowledged') "
                                "THEN ? ELSE t_active END WHERE id=?",
                                (t, r["new"], r["value"], r["who"], r["reason"],
                                 r["shelved_until"], r["new"], t, r["id"]))
                    if cur.rowcount == 0:
                        cur.execute("INSERT INTO alarm_state VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                                    (r["id"], t, r["kind"], r["condition"], r["priority"],
                                     r["new"], r["value"], t if r["new"] == "unacknowledged"
                                     else None, r["who"], r["reason"], r["shelved_until"],
                                     r["text"]))
                    n += 1
                elif kind == "L":
                    cur.execute("DELETE FROM alarm_state")
                    cur.executemany("INSERT INTO alarm_state VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                                    [(r["id"], r["t_s"], r["kind"], r["condition"],
                                      r["priority"], r["state"], r["value"], r["t_active"],
                                      r["who"], r["reason"], r["shelved_until"], r["text"])
                                     for r in payload])
                    n += len(payload)
                else:
                    cur.executemany("INSERT INTO kpis VALUES (?,?,?)",
                                    [(t, k, v) for k, v in payload.items()])
                    n += len(payload)
            t0 = time.perf_counter()
            self.db.commit()
        except (sqlite3.Error, OSError) as e:
            try:
                self.db.rollback()
            except sqlite3.Error:
                pass
            self.error = "%s: %s" % (type(e).__name__, e)
            # Keep it for the next try, bounded like the queue (oldest samples go).
            keep = [b for b in batch if b[0] != "s"] + [b for b in batch if b[0] == "s"][
                -self.MAX_SAMPLE_BATCHES:]
            self.dropped_rows += sum(len(b[2]) for b in batch if b[0] == "s") - \
                sum(len(b[2]) for b in keep if b[0] == "s")
            self._retry = keep[-(self.MAX_RECORDS + self.MAX_SAMPLE_BATCHES):]
            return None
        self.error = None
        self.last_commit_s = time.perf_counter() - t0
        self.rows_written += n
        self.commits += 1
        return t_max

    def prune(self, t_now):
        """Age retention on every table, then the oldest samples while the
        database is over max_mb (freed pages are reused: the file stops growing)."""
        cut = t_now - self.retention_s
        n = 0
        for table in ("samples", "events", "kpis", "audit", "alarms"):
            n += self.db.execute("DELETE FROM %s WHERE t < ?" % table, (cut,)).rowcount
        self.db.commit()
        page = self.db.execute("PRAGMA page_size").fetchone()[0]
        for _ in range(20):
            used = page * (self.db.execute("PRAGMA page_count").fetchone()[0]
                           - self.db.execute("PRAGMA freelist_count").fetchone()[0])
            if used <= self.max_bytes:
                break
            lo, hi = self.db.execute("SELECT min(t), max(t) FROM samples").fetchone()
            if lo is None:
                break
            n += self.db.execute("DELETE FROM samples WHERE t < ?",
                                 (lo + max(0.05 * (hi - lo), 1.0),)).rowcount
            self.db.commit()
        self.pruned_rows += n
        return n

    def _writer(self):
        last_retention = time.monotonic()
        t_last = None
        while not self._stop.wait(self.commit_s):
            t = self._drain()
            t_last = t if t is not None else t_last
            if t_last is not None and time.monotonic() - last_retention > 60:
                try:
                    self.prune(t_last)
                except (sqlite3.Error, OSError) as e:
                    self.error = "retention: %s: %s" % (type(e).__name__, e)
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


def alarm_states(db_path, active=False):
    """The alarm_state table as dicts (greenedge alarms), most urgent first."""
    db = connect(db_path, readonly=True)
    db.row_factory = sqlite3.Row
    try:
        sql = "SELECT * FROM alarm_state"
        if active:
            sql += " WHERE state != 'normal'"
        rows = [dict(r) for r in db.execute(sql + " ORDER BY priority, id")]
    except sqlite3.OperationalError as e:  # a historian from before alarms
        raise FileNotFoundError("%s has no alarm tables (%s)" % (db_path, e))
    finally:
        db.close()
    return rows
