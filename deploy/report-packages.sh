#!/usr/bin/env bash
# Installs what audit reports need from Debian, when missing: Graphviz draws the
# genealogy; WeasyPrint lays out the PDF with Pango and HarfBuzz, in DejaVu fonts.
# Run by deploy/start.sh and deploy/test.sh.
set -euo pipefail
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
