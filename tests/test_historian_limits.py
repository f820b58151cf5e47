"""The historian under a full disk and over months: control never notices,
memory stays bounded, the failure is reported, and it resumes by itself; every
table is pruned by age, and samples by the disk budget."""

import sqlite3
import time

from controller.historian import Historian


def wait(pred, timeout=10.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.02)
    return False


def count(db, table):
    c = sqlite3.connect(str(db))
    try:
        return c.execute("SELECT count(*) FROM %s" % table).fetchone()[0]
    finally:
        c.close()


def test_disk_full_is_reported_bounded_and_recovers(tmp_path):
    db = tmp_path / "h.db"
    h = Historian(db, commit_s=0.02)
    h.MAX_SAMPLE_BATCHES = 50
    h.samples(0.0, [("a.x", 1.0, 0)])
    assert wait(lambda: h.rows_written == 1)
    pages = h.db.execute("PRAGMA page_count").fetchone()[0]
    h.db.execute("PRAGMA max_page_count=%d" % pages)  # SQLite's own "database or disk is full"
    rows = [("dev%d.p%d" % (i, k), float(k), 0) for i in range(20) for k in range(20)]
    t0 = time.perf_counter()
    for k in range(300):
        h.samples(1.0 + k, rows)
    h.event(2.0, "note", "test", "kept through the outage")
    put_s = time.perf_counter() - t0
    assert wait(lambda: h.error is not None)
    assert "full" in h.error
    assert put_s < 0.5                             # the caller never waited on the disk
    hl = h.health()
    assert hl["queued_rows"] <= 51 * len(rows) + 1 and hl["dropped_rows"] > 0
    h.db.execute("PRAGMA max_page_count=1073741823")  # space again
    assert wait(lambda: h.error is None and h.health()["queued_rows"] == 0 and not h._retry)
    h.close()
    assert count(db, "events") == 1                # records survive the outage
    assert count(db, "samples") == 1 + 300 * len(rows) - h.dropped_rows  # every kept row landed


def test_retention_prunes_every_table_by_age_and_samples_by_size(tmp_path):
    db = tmp_path / "h.db"
    h = Historian(db, commit_s=0.02, retention_days=1.0, max_mb=0.5)
    day = 86400.0
    h.event(0.0, "old", "x")
    h.kpis(0.0, {"energy_kwh": 1.0})
    h.audit({"t_s": 0.0, "wall": 0.0, "who": "a", "role": "operator", "kind": "mode",
             "loop": "fan", "target": "mode", "old": None, "new": None, "accepted": True,
             "reason": None})
    rows = [("dev.p%d" % k, float(k), 0) for k in range(100)]
    for k in range(200):
        h.samples(2 * day + k, rows)
    h.event(2 * day, "new", "x")
    assert wait(lambda: h.rows_written == 200 * 100 + 4)
    h.prune(2 * day + 200)
    for table in ("events", "kpis", "audit"):
        assert count(db, table) == (1 if table == "events" else 0), table
    page = h.db.execute("PRAGMA page_size").fetchone()[0]
    used = page * (h.db.execute("PRAGMA page_count").fetchone()[0]
                   - h.db.execute("PRAGMA freelist_count").fetchone()[0])
    assert used <= 0.5e6 and 0 < count(db, "samples") < 200 * 100
    newest = sqlite3.connect(str(db)).execute("SELECT max(t) FROM samples").fetchone()[0]
    assert newest == 2 * day + 199                 # the oldest go first
    h.close()
