"""TOML files with errors a user can act on: file, key path and line.

tomllib gives no positions, so the line of a key is found in the text: the
first `key =` line inside its [table] (or [[array]] entry). Good enough to point
a person at the right line; the key path is always exact.
"""

import math
import re
import tomllib
from pathlib import Path

from controller.errors import UserError


class ConfigError(UserError, ValueError):
    """A config error a user can act on: file:line: key: message."""

    def __init__(self, path, key, line, msg):
        self.path, self.key, self.line = str(path), key, line
        where = "%s:%s" % (path, line) if line else str(path)
        super().__init__("%s: %s: %s" % (where, key or "(file)", msg))


def load(path):
    """(data, text) of a TOML file; syntax errors become ConfigError with the line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(path, None, None, "cannot read (%s)" % e.strerror)
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(path, None, int(m.group(1)) if m else None, "TOML syntax: %s" % e)


_HEADER = re.compile(r"^\[\[?\s*([^\]]+?)\s*\]\]?$")


def _walk(lines):
    """(line number, table the line is in, stripped line, header name or None)."""
    current = ""
    for i, line in enumerate(lines, 1):
        s = line.strip()
        m = _HEADER.match(s)
        if m:
            current = m.group(1)
        yield i, current, s, (m.group(1) if m else None)


def key_line(text, dotted):
    """Best-effort line number of a dotted key path (None if not found)."""
    parts = [p for p in dotted.split(".") if not p.isdigit()]
    leaf = parts[-1]
    tables = parts[:-1]
    lines = text.splitlines()
    want_table = ".".join(tables)
    own = re.compile(r"^%s\s*=" % re.escape(leaf))
    for i, table, s, header in _walk(lines):
        if header is not None:
            if header == dotted:
                return i
        elif table == want_table and own.match(s):
            return i
    # An inline table (settings = { a = 1 }): the line in an enclosing table
    # that holds `leaf =`.
    inline = re.compile(r"(^|[{,\s])%s\s*=" % re.escape(leaf))
    for k in range(len(tables), 0, -1):
        want = ".".join(tables[:k])
        for i, table, s, header in _walk(lines):
            if header is None and table == want and inline.search(s):
                return i
    return None


class Section:
    """Typed reads from one table, each error naming file, key and line."""

    def __init__(self, path, text, data, prefix=""):
        self.path, self.text, self.data, self.prefix = path, text, data, prefix
        self.used = set()

    def error(self, key, msg):
        """A ConfigError for key in this section (public: loaders and scenario
        files raise it for rules the section cannot check itself)."""
        full = self.prefix + key
        return ConfigError(self.path, full, key_line(self.text, full), msg)

    def num(self, key, default=None, lo=-math.inf, hi=math.inf):
        self.used.add(key)
        if key not in self.data:
            if default is None:
                raise self.error(key, "missing (a number)")
            return float(default)
        v = self.data[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.error(key, "expected a number, got %r" % (v,))
        if not lo <= v <= hi:
            raise self.error(key, "%r outside %g..%g" % (v, lo, hi))
        return float(v)

    def str(self, key, default=None, choices=None):
        self.used.add(key)
        v = self.data.get(key, default)
        if v is None:
            raise self.error(key, "missing (a string)")
        if not isinstance(v, str):
            raise self.error(key, "expected a string, got %r" % (v,))
        if choices and v not in choices:
            raise self.error(key, "%r is not one of %s" % (v, ", ".join(choices)))
        return v

    def table(self, key):
        self.used.add(key)
        v = self.data.get(key, {})
        if not isinstance(v, dict):
            raise self.error(key, "expected a table")
        return Section(self.path, self.text, v, self.prefix + key + ".")

    def raw(self, key, default=None):
        self.used.add(key)
        return self.data.get(key, default)

    def check_unknown(self):
        for k in self.data:
            if k not in self.used:
                raise self.error(k, "unknown key")
