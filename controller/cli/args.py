"""Argument types shared by the command table: each raises argparse's error
with the value, so a bad argument is a one-line usage error."""

import argparse


def _number(s, ok, what):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number, got %r" % s)
    if not ok(v) or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError("must be %s, got %r" % (what, s))
    return v


def positive(s):
    return _number(s, lambda v: v > 0, "> 0")


def nonneg(s):
    return _number(s, lambda v: v >= 0, ">= 0")


def unit(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError("unit id must be an integer, got %r" % s)
    if not 1 <= v <= 247:
        raise argparse.ArgumentTypeError("unit id %d outside 1..247" % v)
    return v


def units(s):
    """N or N-M within 1..247 -> (lo, hi)."""
    try:
        lo, _, hi = s.partition("-")
        lo, hi = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError("expected N or N-M, got %r" % s)
    if not 1 <= lo <= hi <= 247:
        raise argparse.ArgumentTypeError("units %r outside 1..247" % s)
    return lo, hi
