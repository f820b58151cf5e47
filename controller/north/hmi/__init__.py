"""The web HMI (`greenedge run --hmi HOST:PORT`; docs/hmi.md): a shift
operator's pages (overview, loop faceplates, alarms, trends, devices, audit,
export) and a JSON API under the same login, served by the host service.

    config.py   the [hmi] table and the bind rule (loopback, or TLS and users)
    auth.py     sessions, CSRF tokens, login lock-out
    views.py    what the pages show, from the hub's latest state
    trend.py    historian reads (trends, audit, CSV) and the SVG trend chart
    server.py   the aiohttp server on its own thread and asyncio loop
    static/     the pages: two HTML shells, one script, one style sheet

Like every northbound interface it reads the data hub and changes the plant
only through the command gate, on its own thread, so it cannot delay the
control cycle. Its package is optional: `pip install 'greenedge[hmi]'`.
"""
