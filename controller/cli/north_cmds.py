"""`greenedge certs | users add`: the northbound interfaces' set-up (docs/integration.md)."""

import getpass
import sys
from pathlib import Path

from controller.errors import UserError


def cmd_certs(a):
    from controller.north.certs import APP_URI, make_cert
    name = a.name
    if a.config:
        from controller.config import load_config
        cfg = load_config(a.config)
        opc = (cfg.north or {}).get("opcua")
        if not opc or not opc["certificate"] or not opc["private_key"]:
            raise UserError("%s: no [opcua] certificate and private_key to write" % a.config)
        cert, key = opc["certificate"], opc["private_key"]
        name = name or cfg.name
    elif a.cert and a.key:
        cert, key = Path(a.cert), Path(a.key)
    else:
        raise UserError("give -c CONFIG, or --cert FILE and --key FILE")
    name = name or "greenedge"
    for p in (cert, key):
        if Path(p).exists() and not a.force:
            raise UserError("%s exists (--force replaces it)" % p)
    make_cert(cert, key, APP_URI % name, hosts=a.host, days=int(a.days))
    print("wrote %s (certificate, application URI %s) and %s (private key)"
          % (cert, APP_URI % name, key))
    return 0


def cmd_users_add(a):
    from controller.north.users import add_user
    if a.password_stdin:
        pw = sys.stdin.readline().rstrip("\n")
    else:
        pw = getpass.getpass("password for %s: " % a.name)
        if getpass.getpass("again: ") != pw:
            raise UserError("the passwords differ")
    add_user(a.file, a.name, a.role, pw)
    print("%s: %s (%s)" % (a.file, a.name, a.role))
    return 0
