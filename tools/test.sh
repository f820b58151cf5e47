#!/usr/bin/env bash
# Sets up and runs the whole test suite (the README's test command).
# Installs GreenEdge with its test extras (this builds the Cython kernels), the
# MicroPython board stubs for the firmware type checks, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# The real components the interface tests start on loopback (Debian packages):
# mosquitto (Sparkplug B), chromium + chromium-driver (the HMI in a browser),
# postgresql (the site historian, tests/test_site.py: its binaries are not on
# PATH, hence the path test below).
# Installed when missing and this runs as root (CI); otherwise the tests that
# need one fail naming the package.
DEB_PKGS="mosquitto:mosquitto chromium:chromium chromedriver:chromium-driver"
missing=""
for pair in $DEB_PKGS; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing="$missing ${pair#*:}"
done
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  [ -n "$missing" ] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
# initdb refuses root: as root, tests/test_site.py runs PostgreSQL as this user.
if [ "$(id -u)" = 0 ] && ! id greenedge-test >/dev/null 2>&1; then
  useradd -r -M -s /usr/sbin/nologin greenedge-test
fi
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
for board in rp2 esp32 stm32; do
  if [ ! -f "typings/$board/machine.pyi" ] && [ ! -d "typings/$board/machine" ]; then
    "$PY" -m pip install --quiet --disable-pip-version-check --no-user \
      "micropython-$board-stubs>=1.29,<1.30" --target "typings/$board"
  fi
done
"$PY" -m pytest -q -p no:cacheprovider "$@"
