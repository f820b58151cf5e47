"""Alarms on the data hub (ISA-18.2 / IEC 62682): definitions with defaults
per profile and their validation (config.py, read by the config loader), the
engine and its historian recorder (engine.py: the service runs them), operator
requests from the CLI (requests.py). docs/alarms.md describes them.

Nothing is imported here: the config loader reads config.py without loading
the engine."""
