"""Fieldbus: poll planner (planner.py), line timing (timing.py), masters (master.py)."""
