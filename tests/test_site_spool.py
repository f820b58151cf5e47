"""The site host's on-disk spool (controller/site/spool.py): rows come back
exactly as they went in, oldest segment first, across a restart; a torn or
damaged segment is set aside, never half replayed; a full spool refuses."""

import datetime as dt

from controller.site.spool import Spool


def rows(k, n=3):
    t0 = dt.datetime(2026, 12, 3, 6, 0, tzinfo=dt.timezone.utc)
    return [(t0 + dt.timedelta(milliseconds=k * 1000 + i), "plant", "boiler",
             "fan1" if i % 2 else "", "m%d" % i, None if i == 1 else 0.1 * k + i,
             "text é" if i == 2 else None, 192 if i % 2 else None, bool(i % 2))
            for i in range(n)]


def test_rows_come_back_in_order_across_a_restart(tmp_path):
    sp = Spool(tmp_path / "spool", 10 ** 6)
    for k in range(3):
        assert sp.put(rows(k)) == 0
    assert (len(sp), sp.rows) == (3, 9)
    sp = Spool(tmp_path / "spool", 10 ** 6)        # the host restarted
    assert (len(sp), sp.rows) == (3, 9)
    got = []
    while (seg := sp.oldest()) is not None:
        got.append(seg[1])
        sp.done(seg[0])
    assert got == [rows(0), rows(1), rows(2)]
    assert (len(sp), sp.rows, sp.bytes) == (0, 0, 0)
    sp.put(rows(3))
    sp.put(rows(4))
    assert [r for _, r in [sp.oldest()]] == [rows(3)]


def test_a_segment_stays_until_done(tmp_path):
    sp = Spool(tmp_path, 10 ** 6)
    sp.put(rows(0))
    first = sp.oldest()
    assert sp.oldest() == first                    # the database failed: the same again
    sp.done(first[0])
    assert sp.oldest() is None


def test_torn_and_damaged_segments_are_set_aside(tmp_path):
    sp = Spool(tmp_path, 10 ** 6)
    for k in range(3):
        sp.put(rows(k))
    segs = sorted(tmp_path.glob("seg-*.jsonl"))
    (tmp_path / "seg-000000000009.tmp").write_text("half a segment")  # a crash mid-write
    text = segs[0].read_text().replace("m2", "mX")                    # a flipped byte
    segs[0].write_text(text)
    segs[1].write_text("\n".join(segs[1].read_text().splitlines()[:-1]) + "\n")  # no trailer
    sp = Spool(tmp_path, 10 ** 6)
    assert not list(tmp_path.glob("*.tmp"))
    seg = sp.oldest()
    assert seg[1] == rows(2)
    assert sp.bad == 2
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == [s.name for s in segs[:2]]


def test_a_full_spool_refuses_and_counts(tmp_path):
    sp = Spool(tmp_path, 1500)
    kept = 0
    for k in range(20):
        if sp.put(rows(k)) == 0:
            kept += 1
    assert 0 < kept < 20
    assert sp.bytes <= 1500 and sp.rows == 3 * kept
    assert sp.put(rows(99)) == 3


def test_rows_without_datetime_are_kept_as_they_are(tmp_path):
    sp = Spool(tmp_path, 10 ** 6)
    raw = [(1764741600000 + i, "plant", "boiler", "", "m", 1.5, None, None, False)
           for i in range(4)]
    sp.put(raw)
    assert sp.oldest()[1] == raw
