#!/usr/bin/env bash
# Installs Lodestone into ./.venv and starts it on the embedded default (SQLite, no
# Kafka) with a deterministic demo chain loaded. Prints the API docs URL, an admin key
# and a trace command. Stop with Ctrl-C; data stays in ./var (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv >/dev/null 2>&1 || true
[ -x .venv/bin/python ] || { echo "python3 -m venv failed: install python3.11 with venv" >&2; exit 1; }
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
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
exec .venv/bin/lodestone demo --data-dir "${LODESTONE_DATA_DIR:-var}" "$@"
