#!/usr/bin/env bash
# Sets up GreenEdge and runs its main job (`greenedge demo`, a virtual plant).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install --quiet --disable-pip-version-check -e .
exec greenedge demo "$@"
