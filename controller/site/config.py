"""site.toml, the site host's config, validated with errors naming file, key
and line:

    [site]       host_id = "site"          the primary host id (spBv1.0/STATE/<host_id>)
                 groups = ["plant"]        Sparkplug groups to record (default: all)
                 stale_s = 60              an edge in session silent this long is stale
    [broker]     url = "mqtts://HOST:8883"  (plain mqtt:// only to a loopback broker)
                 username, password, ca, client_cert, client_key, client_id, keepalive_s
    [database]   dsn = "host=... dbname=... user=greenedge_writer"   libpq DSN of the writer
                 password = "..."          (optional; else in the DSN or ~/.pgpass)
                 report_dsn = "..."        the read-only reporter (default: dsn)
                 report_password = "..."   its password (optional, as password)
                 batch_rows = 20000        most rows per transaction
                 queue_max_rows = 2000000  rows held in memory while the database is away
                 spool_dir = "spool"       beyond those, rows wait on disk here (relative:
                                           to site.toml's folder; "" for none)
                 spool_max_mb = 4096       the spool's size limit (beyond: new rows dropped)
    [retention]  raw_days = 30             raw samples kept (daily partitions dropped after)
                 minute_years = 5          1-minute means kept
    [areas]      <node id> = "<area>"      for the report (default: the node id)
    [baseline_kwh_per_h]                   (optional) per area, its consumption rate
                 "<area>" = 42.0           before GreenEdge (commissioning), kWh/h:
                                           the report's baseline and saving
    [tariff]     price_per_kwh = 0.21      (optional) the report's cost
                 currency = "EUR"          (required with price_per_kwh)
"""

from pathlib import Path

from controller.config.north import parse_broker
from controller.config.toml import ConfigError, Section, key_line, load
from controller.errors import UserError


def _token(sec, key, v):
    if not v or any(c in v for c in "/+#"):
        raise sec.error(key, "%r: not empty, no / + # (a Sparkplug topic token)" % v)
    return v


def load_site(path):
    path = Path(path)
    data, text = load(path)
    top = Section(path, text, data)
    base = path.parent
    s, b, d, r, a, bl, tf = (top.table(k) for k in ("site", "broker", "database", "retention",
                                                    "areas", "baseline_kwh_per_h", "tariff"))
    top.check_unknown()
    cfg = {"path": path}
    cfg["host_id"] = _token(s, "host_id", s.str("host_id", "site"))
    groups = s.raw("groups", [])
    if not isinstance(groups, list) or any(not isinstance(g, str) for g in groups):
        raise s.error("groups", "expected a list of Sparkplug group ids, got %r" % (groups,))
    cfg["groups"] = tuple(_token(s, "groups", g) for g in groups)
    cfg["stale_s"] = s.num("stale_s", 60, 1, 86400)
    s.check_unknown()
    if "url" not in b.data:
        raise b.error("url", "missing: the site broker, mqtts://HOST:PORT")
    mq = {"url": b.str("url"), "username": b.str("username", "") or None,
          "password": b.str("password", "") or None,
          "client_id": b.str("client_id", "greenedge-site-" + cfg["host_id"]),
          "keepalive_s": int(b.num("keepalive_s", 30, 5, 3600)),
          "ca": None, "client_cert": None, "client_key": None}
    try:
        mq["tls"], mq["host"], mq["port"] = parse_broker(mq["url"], "url")
    except UserError as e:
        raise b.error("url", str(e).split(": ", 1)[1])
    for k in ("ca", "client_cert", "client_key"):
        if k in b.data:
            mq[k] = base / b.str(k)
    if (mq["client_cert"] is None) != (mq["client_key"] is None):
        raise b.error("client_cert", "client_cert and client_key go together")
    b.check_unknown()
    cfg["broker"] = mq
    if "dsn" not in d.data:
        raise d.error("dsn", "missing: the writer's libpq DSN, e.g. \"host=127.0.0.1 "
                             "dbname=site user=greenedge_writer\"")
    db = {"dsn": d.str("dsn"), "password": d.str("password", "") or None,
          "report_dsn": d.str("report_dsn", "") or None,
          "report_password": d.str("report_password", "") or None,
          "batch_rows": int(d.num("batch_rows", 20000, 100, 1e6)),
          "queue_max_rows": int(d.num("queue_max_rows", 2e6, 100, 1e9)),
          "spool_max_bytes": int(d.num("spool_max_mb", 4096, 1, 1e7) * 1024 * 1024)}
    spool = d.str("spool_dir", "spool")
    db["spool_dir"] = base / spool if spool else None
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        conninfo_to_dict = None
    for k in ("dsn", "report_dsn"):
        if db[k] and conninfo_to_dict is not None:
            try:
                conninfo_to_dict(db[k])
            except Exception as e:   # psycopg.ProgrammingError: the DSN does not parse
                raise d.error(k, "not a libpq DSN: %s" % e)
    d.check_unknown()
    cfg["database"] = db
    cfg["retention"] = {"raw_days": int(r.num("raw_days", 30, 1, 3650)),
                        "minute_years": r.num("minute_years", 5, 0.1, 100)}
    r.check_unknown()
    areas = {}
    for node, area in a.data.items():
        if not isinstance(area, str) or not area:
            raise a.error(node, "expected the area's name (a string), got %r" % (area,))
        areas[node] = area
    cfg["areas"] = areas
    cfg["baseline_kwh_per_h"] = _baselines(bl, areas, path, text)
    cfg["tariff"] = None
    if tf.data:
        cfg["tariff"] = {"price_per_kwh": tf.num("price_per_kwh", None, 0, 1e6),
                         "currency": tf.str("currency")}
        if not cfg["tariff"]["currency"].strip():
            raise tf.error("currency", "empty: the currency of price_per_kwh (e.g. \"EUR\")")
        tf.check_unknown()
    return cfg


def _baselines(sec, areas, path, text):
    """{area: kWh/h} of [baseline_kwh_per_h]; each key an area of [areas] (an
    edge not named there is its own area: name it there to give it a baseline)."""
    known = sorted(set(areas.values()))
    out = {}
    for area, v in sec.data.items():
        full = "baseline_kwh_per_h.%s" % area
        line = key_line(text, 'baseline_kwh_per_h."%s"' % area) or key_line(text, full)
        if area not in known:
            raise ConfigError(path, full, line, "no such area in [areas] (areas: %s); an edge "
                              "not in [areas] is its own area: add it there, <node> = \"<area>\""
                              % (", ".join(known) or "none"))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1e7:
            raise ConfigError(path, full, line, "expected the area's baseline consumption in "
                              "kWh/h, a number above 0 (at most 1e7), got %r" % (v,))
        out[area] = float(v)
    return out


def dsn_with_password(dsn, password):
    if not password:
        return dsn
    from psycopg.conninfo import make_conninfo
    return make_conninfo(dsn, password=password)
