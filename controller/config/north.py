"""The northbound interfaces' config tables (docs/integration.md):

    [metrics]   listen = "127.0.0.1:9105"            Prometheus /metrics (off if absent)
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
    return out


def check_areas(top, north, devices):
    opc = north.get("opcua")
    if opc:
        for dn in opc["area"]:
            if dn not in devices:
                raise top.table("opcua").table("area").error(
                    dn, "no device %r (devices: %s)" % (dn, ", ".join(devices)))
