#!/usr/bin/env bash
# Browser libraries from the npm registry (versions pinned by package-lock.json), copied into
# static/vendor/ so the desk serves every asset itself: no CDN at run time, nothing vendored
# into the repository by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
    echo "npm is needed to fetch the desk's browser libraries." >&2
    echo "Install Node.js and npm (Debian: sudo apt-get install -y nodejs npm) and run make again." >&2
    exit 1
fi
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
mkdir -p static/vendor
cp node_modules/socket.io-client/dist/socket.io.min.js static/vendor/
cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js \
    static/vendor/lightweight-charts.js
touch static/vendor/.installed
