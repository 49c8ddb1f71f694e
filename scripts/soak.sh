#!/usr/bin/env bash
# The soak job, separate from scripts/test.sh: 30 minutes of steady load against a real
# redis-server (started by the test fixtures), sampling the worker's memory and Redis's keys.
# CD_SOAK_SECONDS and CD_SOAK_RATE shorten or change it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "run scripts/test.sh once first (it creates .venv)"; exit 2; }
exec .venv/bin/python -m pytest -p no:cacheprovider -m soak tests/soak -s "$@"
