#!/usr/bin/env bash
# Create .venv and install rtcc into it (with the test extras when given "test").
# Works on a fresh Debian machine with Python 3.11: installs python3-venv when
# the venv module is missing (needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}
py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "rtcc needs Python >= 3.11 (found $("$py" --version 2>&1))" >&2; exit 2
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$py" -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$py" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
target=.
[ "$extras" = test ] && target='.[test]'
echo "installing rtcc into .venv (log: .venv/pip.log)"
if ! .venv/bin/python -m pip install -e "$target" >.venv/pip.log 2>&1; then
  tail -n 40 .venv/pip.log >&2
  echo "pip install failed; full log in .venv/pip.log" >&2
  exit 1
fi
