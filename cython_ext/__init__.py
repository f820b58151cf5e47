"""Compiled kernels for the host (built by setup.py; no pure-Python fallback).

Importing a kernel that was not built fails with a message saying how to build
it, never with a silent slow path.
"""


def missing(name, err):
    return ImportError(
        "cython_ext.%s is not built (%s). Build it with `pip install -e .` "
        "or `python setup.py build_ext --inplace` (needs a C compiler and Cython)."
        % (name, err))
