#!/usr/bin/env bash
# Prints the path of the first Python 3.12+ interpreter on this machine, or nothing.
# With --explain, says what to install when there is none.
set -u

is_ok() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

candidates=()
for name in python3.13 python3.12 python3; do
  path=$(command -v "$name" 2>/dev/null) && candidates+=("$path")
done
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
if command -v pyenv >/dev/null 2>&1; then
  pyenv_root=$(pyenv root 2>/dev/null || echo "$pyenv_root")
fi
for dir in $(ls -d "$pyenv_root"/versions/3.1[2-9]* 2>/dev/null | sort -rV); do
  candidates+=("$dir/bin/python3")
done
for dir in /usr/local/bin /usr/bin; do
  for name in python3.13 python3.12; do
    [ -x "$dir/$name" ] && candidates+=("$dir/$name")
  done
done

for candidate in "${candidates[@]}"; do
  if is_ok "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

if [ "${1:-}" = "--explain" ]; then
  cat >&2 <<'MSG'
Dalal needs Python 3.12 or newer, and none was found (looked for python3.13, python3.12,
python3 on PATH and in pyenv's versions). Install one, then run make again:
  Debian/Ubuntu:  sudo apt-get install python3.12 python3.12-venv   (or python3.13 python3.13-venv)
  pyenv:          pyenv install 3.12
  macOS:          brew install python@3.12
Or name one explicitly:  make run PYTHON=/path/to/python3.12
MSG
fi
exit 1
