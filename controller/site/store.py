"""The site historian in PostgreSQL (psycopg 3): schema, idempotent batched
writes, the energy report, retention.

Schema (in the schema `greenedge`, owned by the writer role):
    metrics   (time, grp, node, device, metric, value, text, quality, historical)
              one row per Sparkplug metric sample; device '' for node metrics;
              value double precision (booleans 0/1, integers as numbers), text for
              String metrics; quality the OPC DA code of the "Quality" property
              (192 good, 64 uncertain, 0 bad; NULL when the metric has none).
              PARTITION BY RANGE (time), one partition per UTC day
              (metrics_pYYYYMMDD), created ahead (today + DAYS_AHEAD) and for
              any older day a historical batch brings.
              Unique key (grp, node, device, metric, time): a replayed batch
              (store-and-forward sent twice, a rebirth repeating a value with its
              sample time) inserts nothing; a value replaces only a stored null
              (a birth's placeholder in the same millisecond), see UPSERT.
    events    (time, grp, node, device, kind, detail): births, deaths, rebirth
              requests, seq gaps; unique (time, grp, node, device, kind).
    metrics_1min (minute, grp, node, device, metric, mean, min, max, n): the
              downsampled history retention keeps for years.

Writes: COPY (binary) into a temporary table, then one INSERT ... SELECT ... ON CONFLICT
per batch (UPSERT), in one transaction (the rows of a batch land together or
not at all).
"""

import datetime as dt

SCHEMA = "greenedge"
DAYS_AHEAD = 2
UTC = dt.timezone.utc

DDL = """
CREATE TABLE IF NOT EXISTS {s}.metrics (
    time timestamptz NOT NULL, grp text NOT NULL, node text NOT NULL,
    device text NOT NULL, metric text NOT NULL, value double precision, text text,
    quality integer, historical boolean NOT NULL DEFAULT false,
    UNIQUE (grp, node, device, metric, time)
) PARTITION BY RANGE (time);
CREATE TABLE IF NOT EXISTS {s}.events (
    time timestamptz NOT NULL, grp text NOT NULL, node text NOT NULL,
    device text NOT NULL, kind text NOT NULL, detail text,
    UNIQUE (time, grp, node, device, kind)
);
CREATE TABLE IF NOT EXISTS {s}.metrics_1min (
    minute timestamptz NOT NULL, grp text NOT NULL, node text NOT NULL,
    device text NOT NULL, metric text NOT NULL, mean double precision,
    min double precision, max double precision, n integer NOT NULL,
    PRIMARY KEY (grp, node, device, metric, minute)
);
""".format(s=SCHEMA)

COLS = ("time", "grp", "node", "device", "metric", "value", "text", "quality", "historical")
TYPES = ("timestamptz", "text", "text", "text", "text", "float8", "text", "int4", "bool")


# One row per key: within a batch a value beats a null (the placeholder an
# NBIRTH/DBIRTH carries for a metric with no value yet, which can share its
# millisecond with the first real sample); against a stored row, a value
# fills a stored null, anything else is a duplicate and changes nothing.
UPSERT = """
INSERT INTO {s}.metrics
SELECT DISTINCT ON (grp, node, device, metric, time) * FROM _in
ORDER BY grp, node, device, metric, time, (value IS NULL AND text IS NULL)
ON CONFLICT (grp, node, device, metric, time) DO UPDATE
SET value = EXCLUDED.value, text = EXCLUDED.text, quality = EXCLUDED.quality,
    historical = EXCLUDED.historical
WHERE {s}.metrics.value IS NULL AND {s}.metrics.text IS NULL
  AND (EXCLUDED.value IS NOT NULL OR EXCLUDED.text IS NOT NULL)
""".format(s=SCHEMA)


def roles_sql(db, writer, reporter):
    """The two least-privilege roles, for an administrator to run once (docs/site.md):
    the writer owns the schema (it creates the daily partitions) and may not
    create databases or roles; the reporter may only read, new partitions
    included. Passwords are set apart (ALTER ROLE ... PASSWORD)."""
    return """
CREATE ROLE {w} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
REVOKE ALL ON DATABASE {db} FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {w};
GRANT CONNECT ON DATABASE {db} TO {r};
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA {s} AUTHORIZATION {w};
GRANT USAGE ON SCHEMA {s} TO {r};
ALTER DEFAULT PRIVILEGES FOR ROLE {w} IN SCHEMA {s} GRANT SELECT ON TABLES TO {r};
""".format(db=db, w=writer, r=reporter, s=SCHEMA)


def connect(dsn, psycopg=None):
    if psycopg is None:
        from controller.site import need_psycopg
        psycopg = need_psycopg()
    conn = psycopg.connect(dsn, autocommit=False, connect_timeout=10)
    conn.execute("SET TIME ZONE 'UTC'")
    conn.commit()
    return conn


def ms_to_dt(ms):
    return dt.datetime.fromtimestamp(ms / 1000.0, UTC)


def _day(t):
    return dt.date(t.year, t.month, t.day)


class Store:
    """One writer connection. write(rows, events) -> rows inserted (not counting
    the ones already there). Rows are tuples in COLS order with time a
    datetime (UTC)."""

    def __init__(self, conn):
        self.conn = conn
        self.days = set()
        with conn.cursor() as cur:
            # the schema exists when an administrator made the roles (roles_sql); a
            # development database without them: the connecting role creates it
            cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,))
            if cur.fetchone() is None:
                cur.execute("CREATE SCHEMA %s" % SCHEMA)
            cur.execute(DDL)
            cur.execute("CREATE TEMPORARY TABLE _in (LIKE %s.metrics) ON COMMIT DELETE ROWS"
                        % SCHEMA)
            cur.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = "
                        "i.inhrelid JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n "
                        "ON n.oid = p.relnamespace WHERE p.relname = 'metrics' AND "
                        "n.nspname = %s", (SCHEMA,))
            for (name,) in cur.fetchall():
                if name.startswith("metrics_p"):
                    self.days.add(dt.datetime.strptime(name[9:], "%Y%m%d").date())
        today = dt.datetime.now(UTC).date()
        self.ensure_days(today + dt.timedelta(days=i) for i in range(DAYS_AHEAD + 1))
        conn.commit()
        self.inserted = self.offered = 0

    def ensure_days(self, days):
        """Create the partitions of these days not made yet (in the current
        transaction); returns the days created, which a rollback takes back."""
        new = sorted(set(days) - self.days)
        with self.conn.cursor() as cur:
            for d in new:
                cur.execute("CREATE TABLE IF NOT EXISTS {s}.metrics_p{n} PARTITION OF "
                            "{s}.metrics FOR VALUES FROM ('{a}') TO ('{b}')".format(
                                s=SCHEMA, n=d.strftime("%Y%m%d"), a=d.isoformat(),
                                b=(d + dt.timedelta(days=1)).isoformat()))
        self.days.update(new)
        return new

    def write(self, rows, events=()):
        """One transaction: partitions for the rows' days, COPY, UPSERT; the
        events likewise. Returns the rows inserted or filled in."""
        n, made = 0, []
        try:
            if rows:
                made = self.ensure_days({_day(r[0]) for r in rows})
                with self.conn.cursor() as cur:
                    with cur.copy("COPY _in (%s) FROM STDIN (FORMAT BINARY)"
                                  % ", ".join(COLS)) as cp:
                        cp.set_types(TYPES)
                        for r in rows:
                            cp.write_row(r)
                    cur.execute(UPSERT)
                    n = cur.rowcount
            if events:
                with self.conn.cursor() as cur:
                    cur.executemany("INSERT INTO %s.events VALUES (%%s, %%s, %%s, %%s, %%s, %%s) "
                                    "ON CONFLICT DO NOTHING" % SCHEMA, list(events))
            self.conn.commit()
        except BaseException:
            # the partitions this transaction created are gone with it: forget them,
            # or the next batch for that day finds no partition (a refused row would
            # otherwise take its whole day with it)
            self.days.difference_update(made)
            try:
                self.conn.rollback()
            except Exception:   # the connection is gone: the error above says why
                pass
            raise
        self.offered += len(rows)
        self.inserted += n
        return n

    def close(self):
        self.conn.close()


# ---- reports ------------------------------------------------------------------------------
COUNTERS = ("KPIs/energy_kwh", "KPIs/co2_kg")


def energy_report(conn, t_from, t_to, areas):
    """[(area, node, energy_kwh, co2_kg)] over [t_from, t_to] from each edge's
    cumulative KPIs (KPIs/energy_kwh, KPIs/co2_kg): the sum of its increases
    between consecutive stored samples (a counter that went back, an edge that
    restarted without its saved state, adds nothing), then a total row
    ("total", "", ...). Samples of bad quality do not exist for node KPIs."""
    q = """
        SELECT node, metric, COALESCE(SUM(GREATEST(d, 0)), 0) FROM (
            SELECT node, metric,
                   value - LAG(value) OVER (PARTITION BY grp, node, metric ORDER BY time) AS d
            FROM {s}.metrics
            WHERE device = '' AND metric = ANY(%s) AND value IS NOT NULL
              AND time >= %s AND time <= %s) x
        GROUP BY node, metric ORDER BY node""".format(s=SCHEMA)
    with conn.cursor() as cur:
        cur.execute(q, (list(COUNTERS), t_from, t_to))
        got = cur.fetchall()
    conn.rollback()
    per = {}
    for node, metric, v in got:
        per.setdefault(node, {})[metric] = float(v)
    out = []
    for node in sorted(per, key=lambda n: (areas.get(n, n), n)):
        out.append((areas.get(node, node), node, per[node].get(COUNTERS[0], 0.0),
                    per[node].get(COUNTERS[1], 0.0)))
    out.append(("total", "", sum(r[2] for r in out), sum(r[3] for r in out)))
    return out


# ---- retention ----------------------------------------------------------------------------
def retention(store, raw_days, minute_years, now=None):
    """Roll every raw day partition older than raw_days up into 1-minute means
    (metrics_1min, ON CONFLICT: recomputed), drop it; delete 1-minute rows
    older than minute_years. Returns (days dropped, minute rows written)."""
    now = now or dt.datetime.now(UTC)
    horizon = (now - dt.timedelta(days=raw_days)).date()
    conn, dropped, written = store.conn, 0, 0
    try:
        with conn.cursor() as cur:
            for d in sorted(x for x in store.days if x < horizon):
                name = "%s.metrics_p%s" % (SCHEMA, d.strftime("%Y%m%d"))
                cur.execute("""
                    INSERT INTO {s}.metrics_1min
                    SELECT date_trunc('minute', time), grp, node, device, metric,
                           avg(value), min(value), max(value), count(*)
                    FROM {p} GROUP BY 1, 2, 3, 4, 5
                    ON CONFLICT (grp, node, device, metric, minute) DO UPDATE SET
                        mean = EXCLUDED.mean, min = EXCLUDED.min, max = EXCLUDED.max,
                        n = EXCLUDED.n""".format(s=SCHEMA, p=name))
                written += cur.rowcount
                cur.execute("DROP TABLE %s" % name)
                store.days.discard(d)
                dropped += 1
            cur.execute("DELETE FROM %s.metrics_1min WHERE minute < %%s" % SCHEMA,
                        (now - dt.timedelta(days=365.25 * minute_years),))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return dropped, written
