"""Compiled kernels for the host (built by setup.py; no pure-Python fallback).

    from cython_ext import load
    PidBank = load("pid").PidBank

load() fails with a message saying how to build the extension, never with a
silent slow path. Kernels: pid, filters, deadtime, plants, modbus_frame.
"""

import importlib

KERNELS = ("pid", "filters", "deadtime", "plants", "modbus_frame")


def missing(name, err):
    return ImportError(
        "cython_ext.%s is not built (%s). Build it with `pip install -e .` "
        "or `python setup.py build_ext --inplace` (needs a C compiler and Cython)."
        % (name, err))


def load(name):
    if name not in KERNELS:
        raise ValueError("unknown kernel %r (known: %s)" % (name, ", ".join(KERNELS)))
    try:
        return importlib.import_module("cython_ext." + name)
    except ImportError as e:
        raise missing(name, e) from e
