import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# MicroPython scripts run on the unix port by the tests; pytest must not import them.
collect_ignore = ["mpy"]
