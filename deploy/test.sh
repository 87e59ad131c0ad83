#!/usr/bin/env bash
# Installs everything the tests need into ./.venv and runs the whole suite: lint, the
# import contracts, and pytest (unit, integration, API, system).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv >/dev/null 2>&1 || true
[ -x .venv/bin/python ] || { echo "python3 -m venv failed: install python3.11 with venv" >&2; exit 1; }
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
# A real PostgreSQL server for the postgres half of the suite: Debian's package, started
# by the tests themselves on a free loopback port (tests/integration/postgres_fixture.py).
if [ -z "${LODESTONE_POSTGRES_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "== installing PostgreSQL (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
bash deploy/report-packages.sh  # Graphviz, Pango, HarfBuzz, fonts: for audit reports
bash deploy/browser-packages.sh  # Chromium and chromedriver: the page's browser test
echo "== ruff"; .venv/bin/ruff check .
echo "== import contracts"; .venv/bin/lint-imports --no-cache
echo "== mypy"; .venv/bin/mypy libs services
echo "== pytest"
# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
exec .venv/bin/pytest -p no:cacheprovider "$@"
