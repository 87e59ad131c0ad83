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
# Audit reports: Graphviz draws the genealogy; WeasyPrint lays out the PDF with Debian's
# Pango and HarfBuzz, in DejaVu fonts.
missing=$(for package in graphviz libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core; do
  [ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" = "install ok installed" ] || echo "$package"
done)
if [ -n "$missing" ]; then
  echo "== installing the report renderers (Debian packages):" $missing
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "== ruff"; .venv/bin/ruff check .
echo "== import contracts"; .venv/bin/lint-imports --no-cache
echo "== mypy"; .venv/bin/mypy libs
echo "== pytest"
# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
exec .venv/bin/pytest -p no:cacheprovider "$@"
