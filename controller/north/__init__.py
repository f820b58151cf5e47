"""Northbound interfaces: what a plant's SCADA, IIoT platform or IT monitoring
reads from GreenEdge (docs/integration.md).

    prometheus.py   /metrics for Prometheus (prometheus-client)
    opcua.py        an OPC UA server (asyncua)
    sparkplug.py    an MQTT Sparkplug B 3.0 edge node (pysparkplug, paho-mqtt);
                    sparkplug_data.py its metrics and store-and-forward buffer
    users.py        the users file (scrypt-hashed passwords, roles)
    certs.py        a self-signed server certificate (cryptography)

Each reads the data hub (controller/runtime/hub.py) and changes the plant only
through the command gate (controller/runtime/gate.py); each runs in its own
thread (Prometheus, Sparkplug) or its own thread and asyncio loop (OPC UA), so
nothing it does can delay the control cycle. Each is off unless configured.
Their packages are optional: `pip install greenedge[scada]`.
"""

from controller.errors import UserError

EXTRA = "scada"


def need(module, what):
    """Import an optional dependency or say which extra installs it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError("%s needs the Python package %s: pip install 'greenedge[%s]'"
                        % (what, module.split(".")[0], EXTRA)) from None


def parse_hostport(text, what, default_host="127.0.0.1"):
    """"HOST:PORT" (or ":PORT", or "[v6]:PORT") -> (host, port), or UserError."""
    s = str(text).strip()
    host, sep, port = s.rpartition(":")
    if not sep:
        raise UserError("%s: expected HOST:PORT, got %r" % (what, text))
    host = host.strip("[]") or default_host
    try:
        p = int(port)
    except ValueError:
        raise UserError("%s: port %r is not a number (expected HOST:PORT)" % (what, port)) from None
    if not 0 <= p <= 65535:
        raise UserError("%s: port %d outside 0..65535" % (what, p))
    return host, p


def is_loopback(host):
    import ipaddress
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
