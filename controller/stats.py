"""Small statistics shared by the line and the cycle: one quantile rule."""


def quantile(values, q):
    """The q-quantile of values (nearest rank on the sorted values), or None
    when there are none."""
    a = sorted(values)
    return a[min(len(a) - 1, int(q * len(a)))] if a else None


def quantile_ms(values, q):
    """quantile() of seconds, in milliseconds."""
    v = quantile(values, q)
    return None if v is None else 1000.0 * v
