#!/usr/bin/env bash
# Installs what the card renderer needs: Debian's chromium and the npm packages in scripts/.
# Without root or apt-get it says what is missing; the render tests then skip (CI requires them).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup_renderer: chromium is missing (apt-get install -y chromium); render tests will skip" >&2
  fi
fi
if [ ! -f node_modules/adaptivecards/dist/adaptivecards.js ]; then
  if command -v npm >/dev/null 2>&1; then
    npm ci --silent --no-audit --no-fund
  else
    echo "setup_renderer: npm is missing; render tests will skip" >&2
  fi
fi
