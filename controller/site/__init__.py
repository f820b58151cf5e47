"""The site level (docs/site.md): one Sparkplug B primary host application for
every GreenEdge edge node of a site, writing their metrics into PostgreSQL.

    config.py   site.toml: broker, database, retention, areas (validated)
    host.py     the primary host application (`greenedge site -c site.toml`)
    store.py    the PostgreSQL schema, idempotent batched writes, report, retention
    cli.py      `greenedge site` and `greenedge site report`

Its packages are optional: `pip install 'greenedge[site]'` (psycopg 3; the
Sparkplug decoding and MQTT client come with [scada])."""

from controller.errors import UserError


def need_psycopg():
    try:
        import psycopg
    except ImportError:
        raise UserError("greenedge site needs the Python package psycopg: "
                        "pip install 'greenedge[site]'") from None
    return psycopg
