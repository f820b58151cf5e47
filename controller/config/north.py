"""The northbound interfaces' config tables (docs/integration.md):

    [metrics]   listen = "127.0.0.1:9105"            Prometheus /metrics (off if absent)
    [mqtt]      broker = "mqtts://HOST:8883"          Sparkplug B edge node (off if absent;
                group_id, node_id, primary_host_id,  controller/north/sparkplug.py)
                username, password, ca, client_cert, client_key,
                writable = [...], command_role, deadband = {point = x}, buffer_max
    [opcua]     endpoint = "opc.tcp://127.0.0.1:4840"   OPC UA server (off if absent)
                certificate = "pki/server.der", private_key = "pki/server.pem"
                users = "users.toml"                 the users file (controller/north/users.py)
                security = ["Basic256Sha256_SignAndEncrypt", ...]   (default: the four below)
                anonymous = "off" | "read"           (default "off")
                area = { device = "area" }           the address space's plant areas
                                                     (default: the loop that drives the device)
    [hmi]       listen = "127.0.0.1:8080"             the web HMI (controller/north/hmi; off if absent)
                users = "users.toml"                 the users file (required)
                certificate = "hmi.crt", private_key = "hmi.key"   TLS (PEM; required off loopback)
                baseline_kw = 250.0                  the site's measured power before GreenEdge
                                                     (the overview's saving; optional)

`greenedge run --metrics HOST:PORT` / `--opcua opc.tcp://HOST:PORT` / `--hmi HOST:PORT` switch an
interface on (or move it) without editing the file; the rest of its table
still comes from here. Paths are relative to the config file.
"""

from urllib.parse import urlparse

from controller.errors import UserError

SECURE = ("Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt",
          "Aes256_Sha256_RsaPss_Sign", "Aes256_Sha256_RsaPss_SignAndEncrypt")
POLICIES = SECURE + ("None",)


def parse_endpoint(url, what="opcua endpoint"):
    """"opc.tcp://HOST:PORT[/path]" -> (url, host, port), or UserError."""
    u = urlparse(str(url))
    if u.scheme != "opc.tcp" or not u.hostname:
        raise UserError("%s: expected opc.tcp://HOST:PORT, got %r" % (what, url))
    try:
        port = u.port if u.port is not None else 4840
    except ValueError:
        raise UserError("%s: bad port in %r" % (what, url)) from None
    return str(url), u.hostname, port


def parse_broker(url, what="--mqtt"):
    """"mqtts://HOST:PORT" (or mqtt:// to a loopback host) -> (tls, host, port)."""
    u = urlparse(str(url))
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise UserError("%s: expected mqtts://HOST:PORT, got %r" % (what, url))
    try:
        port = u.port if u.port is not None else (8883 if u.scheme == "mqtts" else 1883)
    except ValueError:
        raise UserError("%s: bad port in %r" % (what, url)) from None
    from controller.north import is_loopback
    if u.scheme == "mqtt" and not is_loopback(u.hostname):
        raise UserError("%s: plain mqtt:// only to a loopback broker (passwords would cross "
                        "the network in clear); use mqtts://" % what)
    return u.scheme == "mqtts", u.hostname, port


def load_north(top, base):
    out = {"metrics": None, "opcua": None, "hmi": None}
    if "hmi" in top.data:
        from controller.north.hmi.config import load_hmi
        out["hmi"] = load_hmi(top.table("hmi"), base)
    if "metrics" in top.data:
        m = top.table("metrics")
        listen = m.str("listen", "127.0.0.1:9105")
        from controller.north import parse_hostport
        try:
            parse_hostport(listen, "metrics.listen")
        except UserError as e:
            raise m.error("listen", str(e).split(": ", 1)[1])
        out["metrics"] = {"listen": listen}
        m.check_unknown()
    if "opcua" in top.data:
        o = top.table("opcua")
        url = o.str("endpoint", "opc.tcp://127.0.0.1:4840")
        try:
            parse_endpoint(url)
        except UserError as e:
            raise o.error("endpoint", str(e).split(": ", 1)[1])
        sec = o.raw("security", list(SECURE))
        if not isinstance(sec, list) or not sec or any(s not in POLICIES for s in sec):
            raise o.error("security", "expected a list of %s, got %r" % (", ".join(POLICIES), sec))
        opc = {"endpoint": url, "security": tuple(sec),
               "anonymous": o.str("anonymous", "off", ("off", "read")),
               "certificate": None, "private_key": None, "users": None, "area": {}}
        for k in ("certificate", "private_key", "users"):
            if k in o.data:
                opc[k] = base / o.str(k)
        if any(s != "None" for s in sec) and (opc["certificate"] is None
                                              or opc["private_key"] is None):
            raise o.error("security", "signed endpoints need certificate and private_key "
                          "(create them with `greenedge certs`)")
        area = o.raw("area", {})
        if not isinstance(area, dict) or any(not isinstance(v, str) or not v
                                             for v in area.values()):
            raise o.error("area", "expected a table {device = \"area\"}")
        opc["area"] = dict(area)
        o.check_unknown()
        out["opcua"] = opc
    if "mqtt" in top.data:
        out["mqtt"] = load_mqtt(top, base)
    return out


def load_mqtt(top, base):
    """[mqtt]: the Sparkplug B edge node (controller/north/sparkplug.py)."""
    m = top.table("mqtt")
    name = top.data.get("service", {}).get("name", "greenedge")
    mq = {"broker": m.str("broker", "mqtts://127.0.0.1:8883"),
          "group_id": m.str("group_id", "greenedge"), "node_id": m.str("node_id", name),
          "primary_host_id": m.str("primary_host_id", "") or None,
          "username": m.str("username", "") or None, "password": m.str("password", "") or None,
          "command_role": m.str("command_role", "viewer", ("viewer", "operator", "engineer")),
          "keepalive_s": int(m.num("keepalive_s", 30, 5, 3600)),
          "buffer_max": int(m.num("buffer_max", 100000, 100, 1e8)),
          "ca": None, "client_cert": None, "client_key": None}
    mq["client_id"] = m.str("client_id", "greenedge-%s-%s" % (mq["group_id"], mq["node_id"]))
    try:
        tls, _, _ = parse_broker(mq["broker"], "broker")
    except UserError as e:
        raise m.error("broker", str(e).split(": ", 1)[1])
    for k in ("group_id", "node_id"):
        if not mq[k] or any(c in mq[k] for c in "/+#"):
            raise m.error(k, "%r: not empty, no / + # (a Sparkplug topic token)" % mq[k])
    for k in ("ca", "client_cert", "client_key"):
        if k in m.data:
            mq[k] = base / m.str(k)
    if (mq["client_cert"] is None) != (mq["client_key"] is None):
        raise m.error("client_cert", "client_cert and client_key go together")
    wr = m.raw("writable", [])
    if not isinstance(wr, list) or any(not isinstance(w, str) for w in wr):
        raise m.error("writable", "expected a list of metric names, got %r" % (wr,))
    mq["writable"] = tuple(wr)
    db = m.raw("deadband", {})
    if not isinstance(db, dict) or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                       or not v >= 0 for v in db.values()):
        raise m.error("deadband", "expected a table {point = deadband >= 0, in its unit}")
    mq["deadband"] = {k: float(v) for k, v in db.items()}
    m.check_unknown()
    if not tls:
        mq["ca"] = mq["client_cert"] = mq["client_key"] = None
    return mq


def check_areas(top, north, devices):
    opc = north.get("opcua")
    if opc:
        for dn in opc["area"]:
            if dn not in devices:
                raise top.table("opcua").table("area").error(
                    dn, "no device %r (devices: %s)" % (dn, ", ".join(devices)))


def mqtt_table(cfg, url):
    """`greenedge run --mqtt URL`: the [mqtt] table with this broker (defaults
    for everything else when the config has no [mqtt])."""
    tls, _, _ = parse_broker(url, "--mqtt")
    mq = (getattr(cfg, "north", None) or {}).get("mqtt")
    if mq is None:
        from controller.config.toml import Section
        top = Section(cfg.path, "", {"service": {"name": cfg.name}, "mqtt": {}})
        mq = load_mqtt(top, cfg.path.parent)
    mq = dict(mq, broker=url)
    if not tls:
        mq.update(ca=None, client_cert=None, client_key=None)
    return mq
