#!/usr/bin/env bash
# Install rtcc into .venv and run the center on embedded defaults with the simulated city.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/rtcc demo "$@"
