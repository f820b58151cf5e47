"""The host service's runtime: clock, IPO cycles, modes, persistence (service.py)."""
