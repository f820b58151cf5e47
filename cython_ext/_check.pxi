# Shared wrapper checks for the signal kernels (included, not a module).

def _vec(name, x, Py_ssize_t n):
    """x as a C-contiguous float64 vector of length n, or ValueError saying why."""
    import numpy as _np
    if not isinstance(x, _np.ndarray):
        x = _np.asarray(x, dtype=_np.float64)
    if x.dtype != _np.float64:
        raise ValueError("%s: dtype %s, expected float64" % (name, x.dtype))
    if x.ndim != 1 or x.shape[0] != n:
        raise ValueError("%s: shape %s, expected (%d,)" % (name, x.shape, n))
    if not x.flags.c_contiguous:
        x = _np.ascontiguousarray(x)
    return x


def _pos(name, v):
    import math as _m
    v = float(v)
    if not (v > 0) or _m.isinf(v):
        raise ValueError("%s = %r: must be a positive finite number" % (name, v))
    return v
