"""The users file: who may log in to an interface (OPC UA today) and with
which command-gate role (viewer < operator < engineer).

A TOML file, one table per user; the password is kept only as an scrypt hash
(hashlib.scrypt, n=2**14, r=8, p=1, 16 random bytes of salt, 32 bytes of key):

    [users.alice]
    role = "operator"
    scrypt = "16384:8:1:<salt hex>:<key hex>"

`greenedge users add --file users.toml alice --role operator` writes or
replaces an entry (the password from a prompt, or one line on stdin with
--password-stdin). The file holds no password; keep it readable by the
service only (chmod 600) all the same: a hash can be attacked offline.
"""

import hashlib
import hmac
import os
from pathlib import Path

from controller.errors import UserError
from controller.runtime.gate import ROLES

N, R, P, DKLEN = 2 ** 14, 8, 1, 32


def hash_password(password, salt=None):
    salt = os.urandom(16) if salt is None else salt
    key = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=DKLEN)
    return "%d:%d:%d:%s:%s" % (N, R, P, salt.hex(), key.hex())


def verify(password, stored):
    try:
        n, r, p, salt, key = stored.split(":")
        n, r, p, salt, key = int(n), int(r), int(p), bytes.fromhex(salt), bytes.fromhex(key)
    except (ValueError, AttributeError):
        return False
    got = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(key),
                         maxmem=2 ** 26)
    return hmac.compare_digest(got, key)


def load_users(path):
    """{name: {"role", "scrypt"}} from a users file, or UserError naming the entry."""
    from controller.config.toml import load
    path = Path(path)
    if not path.exists():
        raise UserError("users file %s does not exist (create it with `greenedge users add "
                        "--file %s NAME --role ROLE`)" % (path, path))
    data, _ = load(path)
    users = {}
    for name, u in (data.get("users") or {}).items():
        if not isinstance(u, dict) or u.get("role") not in ROLES \
                or not isinstance(u.get("scrypt"), str) or u["scrypt"].count(":") != 4:
            raise UserError("%s: users.%s needs role (%s) and scrypt = \"n:r:p:salt:key\""
                            % (path, name, " | ".join(ROLES)))
        users[name] = {"role": u["role"], "scrypt": u["scrypt"]}
    return users


def _quote(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def add_user(path, name, role, password):
    if role not in ROLES:
        raise UserError("role %r is not one of %s" % (role, ", ".join(ROLES)))
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise UserError("user name %r: letters, digits, - _ . only" % (name,))
    if len(password) < 8:
        raise UserError("password too short (8 characters at least)")
    path = Path(path)
    users = load_users(path) if path.exists() else {}
    users[name] = {"role": role, "scrypt": hash_password(password)}
    text = "# GreenEdge users (controller/north/users.py): scrypt-hashed passwords\n"
    for n in sorted(users):
        text += "\n[users.%s]\nrole = %s\nscrypt = %s\n" % (n, _quote(users[n]["role"]),
                                                          _quote(users[n]["scrypt"]))
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return users


class Users:
    """Checks a login against the file; read once at start."""

    def __init__(self, path):
        self.path = path
        self.users = load_users(path) if path is not None else {}

    def role_of(self, name, password):
        """The user's role, or None (unknown user or wrong password)."""
        u = self.users.get(name)
        if u is None or password is None or not verify(password, u["scrypt"]):
            return None
        return u["role"]
