"""The site historian in PostgreSQL (psycopg 3): schema, idempotent batched
writes, the site report (site_kpis), retention.

Size (487 lines): all of the site's SQL in one place, so the schema, the
writer's two paths and the report's index-only queries are read together.

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

Writes: one transaction per batch (its rows land together or not at all):
binary COPY straight into metrics, in a savepoint, as nearly every batch is
all new rows; a duplicate key (a replayed batch, a birth's null placeholder
beside its first sample) rolls the savepoint back and the batch goes the
idempotent way: COPY into a temporary table, then one INSERT ... SELECT ...
ON CONFLICT (UPSERT), as will the next batch unless that one was all new.
PostgreSQL's COPY into the table is about twice its INSERT ... ON CONFLICT.
"""

import datetime as dt
import re
import struct

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


DAY_MS = 86400000
EPOCH_DAY = dt.date(1970, 1, 1)
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=UTC)
PG_EPOCH_MS = 946684800000      # PostgreSQL's timestamp epoch, ms after the Unix one
US = dt.timedelta(microseconds=1)


def _day(t):
    """The UTC day of a row's time (ms since the epoch, or a datetime)."""
    if type(t) is int:
        return EPOCH_DAY + dt.timedelta(days=t // DAY_MS)
    return dt.date(t.year, t.month, t.day)


def _time_dumper(psycopg):
    """COPY's timestamptz (binary: int64 microseconds since 2000-01-01 UTC)
    from an int of ms since the Unix epoch, the Sparkplug timestamp as it
    came (exact; no datetime per row, which cost the host about a fifth of
    its time per metric), or from a datetime."""
    pack = struct.Struct("!q").pack

    class MsTimestamptz(psycopg.adapt.Dumper):
        oid = psycopg.postgres.types["timestamptz"].oid
        format = psycopg.pq.Format.BINARY

        def dump(self, t):
            if type(t) is int:
                return pack((t - PG_EPOCH_MS) * 1000)
            return pack((t - PG_EPOCH) // US)
    return MsTimestamptz


class Store:
    """One writer connection. write(rows, events) -> rows inserted (not counting
    the ones already there). Rows are tuples in COLS order with time an int
    of ms since the Unix epoch (the host's) or a datetime (UTC)."""

    def __init__(self, conn):
        from controller.site import need_psycopg
        psycopg = need_psycopg()
        self.conn = conn
        # only COPY's typed columns look dumpers up by oid: parameters keep psycopg's own
        conn.adapters.register_dumper(None, _time_dumper(psycopg))
        self._duplicate = psycopg.errors.UniqueViolation
        self.direct = True        # the next batch tried as all new rows (COPY into metrics)
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
        """One transaction: partitions for the rows' days, COPY into metrics
        (or, a duplicate among them, COPY + UPSERT); the events likewise.
        Returns the rows inserted or filled in."""
        n, made = 0, []
        try:
            if rows:
                made = self.ensure_days({_day(t) for t in {r[0] for r in rows}})
                with self.conn.cursor() as cur:
                    n = self._copy_new(cur, rows) if self.direct else None
                    if n is None:
                        self._copy(cur, "_in", rows)
                        cur.execute(UPSERT)
                        n = cur.rowcount
                        self.direct = n == len(rows)   # all new: the next one COPY first
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

    def _copy(self, cur, table, rows):
        with cur.copy("COPY %s (%s) FROM STDIN (FORMAT BINARY)" % (table, ", ".join(COLS))) as cp:
            cp.set_types(TYPES)
            write = cp.write_row
            for r in rows:
                write(r)

    def _copy_new(self, cur, rows):
        """COPY the rows straight into metrics in a savepoint: len(rows); a key
        already there or twice in the batch: the savepoint rolled back, None."""
        cur.execute("SAVEPOINT new_rows")
        try:
            self._copy(cur, SCHEMA + ".metrics", rows)
        except self._duplicate:
            cur.execute("ROLLBACK TO SAVEPOINT new_rows")
            self.direct = False
            return None
        cur.execute("RELEASE SAVEPOINT new_rows")
        return len(rows)

    def close(self):
        self.conn.close()


# ---- reports ------------------------------------------------------------------------------
COUNTERS = ("KPIs/energy_kwh", "KPIs/co2_kg")


ACTIVE = ("unacknowledged", "acknowledged")   # the edge's Alarms/Active counts these
STACK = re.compile(r"^KPIs/(.+)_last_hour_start_s$")
STATE = re.compile(r"^Alarms/(.+)/State$")


def site_kpis(conn, t_from, t_to, cfg):
    """The site report over [t_from, t_to] (docs/site.md, "Site KPIs"), from
    what the edges published (every edge with an NBIRTH event by t_to):

    nodes     per edge: energy_kwh, co2_kg (the sum of the increases between
              consecutive samples of KPIs/energy_kwh, KPIs/co2_kg: a counter
              that went back adds nothing), reported_h (the time between
              consecutive energy samples, each gap at most [site] stale_s:
              longer is time the edge did not report), cost, active_alarms
              (its latest Alarms/Active at t_to)
    areas     per area of [areas]: the sums, reported_h (the union of its edges'
              reported time), baseline_kwh = baseline_kwh_per_h x reported_h,
              saving_kwh = baseline - energy, saving_pct, cost, saving_cost,
              active_alarms and the alarms (node, id, state, priority, since)
              whose latest Alarms/<id>/State at t_to is unacknowledged or
              acknowledged
    total     the sums; the saving over the areas with a baseline
    emissions per edge and stack, each clock hour inside the range the edge
              closed: its mean at the reference O2, limit and exceedance as the
              edge's CEMS accounting published them (KPIs/<stack>_last_hour_*,
              the first sample of each hour), never recomputed here

    Every query reads one edge's node metrics through the unique key's index
    (grp, node, device, metric, time), never the range's device rows.
    """
    areas, gap_s = cfg["areas"], cfg["stale_s"]
    tariff = cfg.get("tariff")
    price = tariff["price_per_kwh"] if tariff else None
    per, alarms, hours = {}, {}, []
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT grp, node FROM {s}.events WHERE kind = 'NBIRTH' AND "
                    "time <= %s ORDER BY grp, node".format(s=SCHEMA), (t_to,))
        edges = cur.fetchall()
        for g, n in edges:
            cur.execute(_NAMES, (g, n, g, n))
            names = [m for (m,) in cur.fetchall() if m is not None]
            cur.execute(_ENERGY, (g, n, list(COUNTERS), t_from, t_to))
            d = per.setdefault(n, {})
            for metric, v in cur.fetchall():
                d[metric] = d.get(metric, 0.0) + float(v)
            for m in names:
                k = STACK.match(m)
                if k:
                    base = "KPIs/%s_" % k.group(1)
                    cur.execute(_HOURS, {"g": g, "n": n, "m": m, "f": t_from, "t": t_to,
                                         "f_s": t_from.timestamp(), "t_s": t_to.timestamp(),
                                         "mean": base + "last_hour_mean_mg_nm3",
                                         "exc": base + "last_hour_exceeded",
                                         "lim": base + "limit_mg_nm3"})
                    hours += [(n, k.group(1)) + tuple(r) for r in cur.fetchall()]
            cur.execute(_ACTIVE, (g, n, t_to))
            got = cur.fetchone()
            states = [m for m in names if STATE.match(m)]
            cur.execute(_ALARMS, {"g": g, "n": n, "t": t_to, "active": list(ACTIVE),
                                  "names": states,
                                  "prio": [m[:-len("State")] + "Priority" for m in states]})
            alarms[(g, n)] = (None if got is None or got[0] is None else int(got[0]),
                              cur.fetchall())
        cur.execute(_REPORTED, {"f": t_from, "t": t_to, "gap": gap_s,
                                "g": [g for g, _ in edges], "n": [n for _, n in edges],
                                "a": [areas.get(n, n) for _, n in edges]})
        reported = cur.fetchall()
    conn.rollback()
    node_h = {n: float(h) for kind, n, h in reported if kind == "node"}
    area_h = {a: float(h) for kind, a, h in reported if kind == "area"}

    def money(kwh):
        return None if price is None or kwh is None else kwh * price

    node_rows = {}
    for n in sorted(per, key=lambda n: (areas.get(n, n), n)):
        kwh = per[n].get(COUNTERS[0], 0.0)
        act = [a for (g, nn), a in alarms.items() if nn == n]
        node_rows[n] = {"area": areas.get(n, n), "node": n, "energy_kwh": kwh,
                        "co2_kg": per[n].get(COUNTERS[1], 0.0),
                        "reported_h": node_h.get(n, 0.0) / 3600.0, "cost": money(kwh),
                        "active_alarms": (None if not act or all(a[0] is None for a in act)
                                          else sum(a[0] or 0 for a in act))}
    out_areas = []
    for area in sorted({r["area"] for r in node_rows.values()}):
        rows = [r for r in node_rows.values() if r["area"] == area]
        kwh = sum(r["energy_kwh"] for r in rows)
        rate = cfg.get("baseline_kwh_per_h", {}).get(area)
        hrs = area_h.get(area, 0.0) / 3600.0
        base = None if rate is None else rate * hrs
        saving = None if base is None else base - kwh
        act = [r["active_alarms"] for r in rows if r["active_alarms"] is not None]
        listed = sorted(({"node": nn, "id": m[len("Alarms/"):-len("/State")], "state": st_,
                          "priority": None if pr is None else int(pr),
                          "since": t.isoformat()}
                         for (g, nn), (_, lst) in alarms.items() if areas.get(nn, nn) == area
                         for m, st_, t, pr in lst),
                        key=lambda x: (x["priority"] or 9, x["node"], x["id"]))
        out_areas.append({
            "area": area, "nodes": [r["node"] for r in rows], "energy_kwh": kwh,
            "co2_kg": sum(r["co2_kg"] for r in rows), "reported_h": hrs,
            "baseline_kwh_per_h": rate, "baseline_kwh": base, "saving_kwh": saving,
            "saving_pct": None if not base else 100.0 * saving / base,
            "cost": money(kwh), "saving_cost": money(saving),
            "active_alarms": sum(act) if act else None, "alarms": listed})
    with_base = [a for a in out_areas if a["baseline_kwh"] is not None]
    base = sum(a["baseline_kwh"] for a in with_base) if with_base else None
    saving = sum(a["saving_kwh"] for a in with_base) if with_base else None
    kwh = sum(a["energy_kwh"] for a in out_areas)
    act = [a["active_alarms"] for a in out_areas if a["active_alarms"] is not None]
    total = {"energy_kwh": kwh, "co2_kg": sum(a["co2_kg"] for a in out_areas),
             "baseline_kwh": base, "saving_kwh": saving,
             "saving_pct": None if not base else 100.0 * saving / base,
             "cost": money(kwh), "saving_cost": money(saving),
             "active_alarms": sum(act) if act else None}
    emissions = [{"area": areas.get(n, n), "node": n, "stack": stack,
                  "hour": dt.datetime.fromtimestamp(start, UTC).isoformat(),
                  "mean_mg_nm3": mean, "limit_mg_nm3": lim,
                  "exceeded": None if exc is None else bool(exc >= 0.5)}
                 for n, stack, start, mean, exc, lim in hours]
    return {"from": t_from.isoformat(), "to": t_to.isoformat(),
            "currency": tariff["currency"] if tariff else None, "price_per_kwh": price,
            "nodes": list(node_rows.values()), "areas": out_areas, "total": total,
            "emissions": emissions}


# The edge's node metric names: a skip scan of the unique index, one probe per
# name (not a read of its history).
_NAMES = """
    WITH RECURSIVE names(metric) AS (
        (SELECT metric FROM {s}.metrics WHERE grp = %s AND node = %s AND device = ''
         ORDER BY metric LIMIT 1)
        UNION ALL
        SELECT (SELECT metric FROM {s}.metrics WHERE grp = %s AND node = %s
                AND device = '' AND metric > names.metric ORDER BY metric LIMIT 1)
        FROM names WHERE names.metric IS NOT NULL)
    SELECT metric FROM names""".format(s=SCHEMA)

_ENERGY = """
    SELECT metric, COALESCE(SUM(GREATEST(d, 0)), 0) FROM (
        SELECT metric, value - LAG(value) OVER (PARTITION BY metric ORDER BY time) AS d
        FROM {s}.metrics
        WHERE grp = %s AND node = %s AND device = '' AND metric = ANY(%s)
          AND value IS NOT NULL AND time >= %s AND time <= %s) x
    GROUP BY metric""".format(s=SCHEMA)

# Reported time, seconds: per edge the gaps (at most gap s) between its
# consecutive energy samples; per area their union (gaps-and-islands: an
# interval that starts after every earlier one ended opens a new island).
_REPORTED = """
    WITH g AS (
        SELECT e.area, e.node, iv.a, iv.b
        FROM unnest(%(g)s::text[], %(n)s::text[], %(a)s::text[]) AS e(grp, node, area)
        CROSS JOIN LATERAL (
            SELECT LAG(time) OVER (ORDER BY time) AS a, time AS b FROM {s}.metrics m
            WHERE m.grp = e.grp AND m.node = e.node AND m.device = ''
              AND m.metric = 'KPIs/energy_kwh' AND m.value IS NOT NULL
              AND m.time >= %(f)s AND m.time <= %(t)s) iv
        WHERE iv.a IS NOT NULL AND iv.b - iv.a <= %(gap)s * interval '1 second'),
    f AS (
        SELECT area, a, b, CASE WHEN a <= MAX(b) OVER (PARTITION BY area ORDER BY a, b
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                           THEN 0 ELSE 1 END AS new FROM g),
    k AS (SELECT area, a, b, SUM(new) OVER (PARTITION BY area ORDER BY a, b) AS island FROM f)
    SELECT 'node', node, SUM(EXTRACT(epoch FROM b - a)) FROM g GROUP BY node
    UNION ALL
    SELECT 'area', area, SUM(len) FROM (
        SELECT area, EXTRACT(epoch FROM MAX(b) - MIN(a)) AS len FROM k GROUP BY area, island) x
    GROUP BY area""".format(s=SCHEMA)

# One stack's closed hours inside the range (start >= from, start + 1 h <= to),
# each once, at the edge's first sample of its start; mean, exceedance and
# limit as of that sample (the edge sends them first: same drain, earlier or
# equal time).
_LATEST = """LEFT JOIN LATERAL (SELECT value FROM {s}.metrics m WHERE m.grp = %(g)s
        AND m.node = %(n)s AND m.device = '' AND m.metric = %({k})s AND m.time <= s.time
        ORDER BY m.time DESC LIMIT 1) {k} ON true"""
_HOURS = """
    SELECT DISTINCT ON (s.value) s.value, mean.value, exc.value, lim.value
    FROM {s}.metrics s {mean} {exc} {lim}
    WHERE s.grp = %(g)s AND s.node = %(n)s AND s.device = '' AND s.metric = %(m)s
      AND s.value IS NOT NULL AND s.value >= %(f_s)s AND s.value + 3600 <= %(t_s)s
      AND s.time >= %(f)s AND s.time <= %(t)s + interval '1 day'
    ORDER BY s.value, s.time""".format(s=SCHEMA, **{k: _LATEST.format(s=SCHEMA, k=k)
                                                     for k in ("mean", "exc", "lim")})

_ACTIVE = """
    SELECT value FROM {s}.metrics WHERE grp = %s AND node = %s AND device = ''
      AND metric = 'Alarms/Active' AND time <= %s ORDER BY time DESC LIMIT 1""".format(s=SCHEMA)

# Each Alarms/<id>/State's latest value at t: the active ones, with their priority.
_ALARMS = """
    SELECT n.metric, st.text, st.time, pr.value
    FROM unnest(%(names)s::text[], %(prio)s::text[]) AS n(metric, prio)
    JOIN LATERAL (SELECT text, time FROM {s}.metrics WHERE grp = %(g)s AND node = %(n)s
        AND device = '' AND metric = n.metric AND time <= %(t)s
        ORDER BY time DESC LIMIT 1) st ON true
    LEFT JOIN LATERAL (SELECT value FROM {s}.metrics WHERE grp = %(g)s AND node = %(n)s
        AND device = '' AND metric = n.prio AND time <= %(t)s
        ORDER BY time DESC LIMIT 1) pr ON true
    WHERE st.text = ANY(%(active)s)
    ORDER BY n.metric""".format(s=SCHEMA)


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
