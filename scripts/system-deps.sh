#!/usr/bin/env bash
# System programs the test suite starts for real: installed from Debian when missing.
#   redis-server      - the shared market-data feed across desk processes (tests/test_feed_redis.py)
#   /usr/bin/chromium - the browser Playwright drives headless (tests/browser/); Debian's own
#                       package, never a browser Playwright downloads
set -euo pipefail

declare -A PACKAGE_OF=([redis-server]=redis-server [/usr/bin/chromium]=chromium)

missing=()
for program in "${!PACKAGE_OF[@]}"; do
    if [[ "$program" == /* ]]; then
        [ -x "$program" ] || missing+=("${PACKAGE_OF[$program]}")
    else
        command -v "$program" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$program]}")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    run=(sudo)
else
    echo "The tests need these Debian packages: ${missing[*]}" >&2
    echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "Installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
"${run[@]}" apt-get update -qq
"${run[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
