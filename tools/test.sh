#!/usr/bin/env bash
# Sets up and runs the whole test suite (the README's test command).
# Installs GreenEdge with its test extras (this builds the Cython kernels), the
# MicroPython board stubs for the firmware type checks, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
for board in rp2 esp32 stm32; do
  if [ ! -f "typings/$board/machine.pyi" ] && [ ! -d "typings/$board/machine" ]; then
    "$PY" -m pip install --quiet --disable-pip-version-check --no-user \
      "micropython-$board-stubs>=1.29,<1.30" --target "typings/$board"
  fi
done
"$PY" -m pytest -q -p no:cacheprovider "$@"
