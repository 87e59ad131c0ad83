#!/usr/bin/env bash
# Installs Lodestone into ./.venv and starts it on the embedded default (SQLite, no
# Kafka) with a deterministic demo chain loaded. Prints the page's URL, the API docs
# URL, where the admin key is and a trace command. Stop with Ctrl-C; data stays in
# ./var (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv >/dev/null 2>&1 || true
[ -x .venv/bin/python ] || { echo "python3 -m venv failed: install python3.11 with venv" >&2; exit 1; }
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
bash deploy/report-packages.sh  # Graphviz, Pango, HarfBuzz, fonts: for audit reports
bash deploy/browser-packages.sh  # Chromium and chromedriver: the page's browser test
exec .venv/bin/lodestone demo --data-dir "${LODESTONE_DATA_DIR:-var}" "$@"
