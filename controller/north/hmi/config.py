"""The [hmi] table of a plant config (controller/config/north.py calls this):

    [hmi]
    listen = "127.0.0.1:8080"     HOST:PORT (default 127.0.0.1:8080)
    users = "users.toml"          the users file (controller/north/users.py), required
    certificate = "hmi.crt"       TLS certificate chain (PEM) and its key (PEM):
    private_key = "hmi.key"       both or neither; required to bind off loopback
    baseline_kw = 250.0           the site's measured mean power before GreenEdge
                                  (the overview's saving vs baseline; optional)
    session_min = 30              idle minutes before a session ends (default 30)

Paths are relative to the config file. `greenedge run --hmi HOST:PORT` moves
`listen` (or switches the HMI on with the users file from [opcua] when there
is no [hmi] table). The bind rule (loopback, or TLS and users) is checked
here and again when the server starts.
"""

from controller.errors import UserError


def hmi_table(listen="127.0.0.1:8080", users=None, certificate=None, private_key=None,
              baseline_kw=None, session_min=30.0):
    return {"listen": listen, "users": users, "certificate": certificate,
            "private_key": private_key, "baseline_kw": baseline_kw, "session_min": session_min}


def check_bind(hmi, what="hmi"):
    """UserError unless the listen address is loopback, or TLS and users are set."""
    from controller.north import is_loopback, parse_hostport
    host, _ = parse_hostport(hmi["listen"], what)
    if hmi["users"] is None:
        raise UserError("%s: the HMI needs a users file (users = \"users.toml\"; "
                        "`greenedge users add --file users.toml NAME --role ROLE`)" % what)
    if (hmi["certificate"] is None) != (hmi["private_key"] is None):
        raise UserError("%s: certificate and private_key go together (PEM files)" % what)
    if not is_loopback(host) and hmi["certificate"] is None:
        raise UserError("%s: refusing to bind %s without TLS: a non-loopback address needs "
                        "certificate and private_key (PEM) and users" % (what, host))
    return host


def load_hmi(t, base):
    h = hmi_table(listen=t.str("listen", "127.0.0.1:8080"))
    for k in ("users", "certificate", "private_key"):
        if k in t.data:
            h[k] = base / t.str(k)
    if "baseline_kw" in t.data:
        h["baseline_kw"] = t.num("baseline_kw", None, 0.0, 1e9)
    h["session_min"] = t.num("session_min", 30.0, 1.0, 24 * 60.0)
    try:
        check_bind(h)
    except UserError as e:
        raise t.error("listen", str(e).split(": ", 1)[1])
    t.check_unknown()
    return h
