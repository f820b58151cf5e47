"""The site host's on-disk spool: rows that wait for PostgreSQL beyond what
memory holds ([database] queue_max_rows), kept in a folder ([database]
spool_dir, spool_max_mb) so that a long database outage, or the host
restarting during one, loses nothing the edges sent.

One segment file per batch of rows, named by a sequence number so the oldest
is written first. A segment is written to a .tmp file, flushed to disk
(fsync), then renamed, so a crash leaves either a whole segment or a .tmp
that is ignored. Each segment is JSON lines: a header with the row count and
how the time column is kept, the rows, and a trailer with the count and the
CRC-32 of the rows' bytes; a segment whose trailer is missing or wrong (a
disk that lied, an edited file) is moved to bad/ and counted, never half
replayed. A segment leaves the spool only when the caller says its rows are
committed (done()), so a database that fails while a segment is being
written keeps it.
"""

import datetime as dt
import json
import os
import zlib
from pathlib import Path

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _enc_time(t):
    return (t - EPOCH) // dt.timedelta(microseconds=1)


def _dec_time(us):
    return EPOCH + dt.timedelta(microseconds=us)


class Spool:
    def __init__(self, folder, max_bytes):
        self.dir = Path(folder)
        self.max_bytes = int(max_bytes)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "bad").mkdir(exist_ok=True)
        except OSError as e:
            raise OSError("site spool folder %s: %s" % (self.dir, e.strerror or e)) from e
        for tmp in self.dir.glob("*.tmp"):   # a crash while writing: never whole
            tmp.unlink()
        self._segs = sorted(self.dir.glob("seg-*.jsonl"))
        self._next = int(self._segs[-1].name[4:16]) + 1 if self._segs else 1
        self.bytes = sum(p.stat().st_size for p in self._segs)
        self.rows = sum(self._count(p) for p in self._segs)
        self.bad = 0

    @staticmethod
    def _count(path):
        with open(path, "rb") as f:
            try:
                return int(json.loads(f.readline())["rows"])
            except (ValueError, KeyError, TypeError):
                return 0

    def __len__(self):
        return len(self._segs)

    def put(self, rows):
        """Write rows as one segment; returns how many did not fit (0: all kept)."""
        if not rows:
            return 0
        timed = isinstance(rows[0][0], dt.datetime)
        body = "".join(json.dumps([_enc_time(r[0]) if timed else r[0], *r[1:]],
                                  separators=(",", ":")) + "\n" for r in rows).encode()
        head = json.dumps({"v": 1, "rows": len(rows), "time": "us" if timed else "raw"}) + "\n"
        tail = json.dumps({"end": len(rows), "crc": zlib.crc32(body)}) + "\n"
        size = len(head) + len(body) + len(tail)
        if self.bytes + size > self.max_bytes:
            return len(rows)
        path = self.dir / ("seg-%012d.jsonl" % self._next)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(head.encode())
            f.write(body)
            f.write(tail.encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._fsync_dir()
        self._next += 1
        self._segs.append(path)
        self.bytes += size
        self.rows += len(rows)
        return 0

    def oldest(self):
        """(segment, rows) of the oldest whole segment, or None when empty. A
        damaged segment is moved to bad/ (counted in .bad) and skipped."""
        while self._segs:
            path = self._segs[0]
            rows = self._read(path)
            if rows is not None:
                return path, rows
            self._drop(path, bad=True)
        return None

    def done(self, path):
        """The rows of this segment are committed: remove it."""
        self._drop(path, bad=False)

    def _drop(self, path, bad):
        size, n = path.stat().st_size, self._count(path)
        if bad:
            self.bad += 1
            os.replace(path, self.dir / "bad" / path.name)
        else:
            path.unlink()
        self._segs.remove(path)
        self.bytes -= size
        self.rows -= n

    def _read(self, path):
        try:
            lines = path.read_bytes().splitlines(keepends=True)
            head, tail = json.loads(lines[0]), json.loads(lines[-1])
            body = b"".join(lines[1:-1])
            n = head["rows"]
            if (not isinstance(tail, dict) or tail.get("end") != n or len(lines) != n + 2
                    or tail.get("crc") != zlib.crc32(body)):
                return None
            rows = [json.loads(ln) for ln in lines[1:-1]]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None
        if head.get("time") == "us":
            return [(_dec_time(r[0]), *r[1:]) for r in rows]
        return [tuple(r) for r in rows]

    def _fsync_dir(self):
        try:
            fd = os.open(self.dir, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
