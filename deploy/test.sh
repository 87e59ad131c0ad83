#!/usr/bin/env bash
# Installs everything the tests need into ./.venv and runs the whole suite: lint, the
# import contracts, and pytest (unit, integration, API, system).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv >/dev/null 2>&1 || true
[ -x .venv/bin/python ] || { echo "python3 -m venv failed: install python3.11 with venv" >&2; exit 1; }
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "== ruff"; .venv/bin/ruff check libs services tests bench
echo "== import contracts"; .venv/bin/lint-imports --no-cache
echo "== mypy"; .venv/bin/mypy libs
echo "== pytest"
# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
exec .venv/bin/pytest -p no:cacheprovider "$@"
