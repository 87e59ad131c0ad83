#!/usr/bin/env bash
# Installs what the page's browser test needs from Debian, when missing: the headless
# Chromium and its WebDriver (Selenium drives /usr/bin/chromium through
# /usr/bin/chromedriver; nothing is downloaded by Selenium itself). Run by
# deploy/start.sh and deploy/test.sh.
set -euo pipefail
missing=$(for package in chromium chromium-driver; do
  [ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" = "install ok installed" ] || echo "$package"
done)
if [ -n "$missing" ]; then
  echo "== installing the browser for the page's test (Debian packages):" $missing
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
