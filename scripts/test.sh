#!/usr/bin/env bash
# Install everything the tests need (redis-server and postgresql from Debian, the package
# with its test extra in .venv) and run lint, types and the whole test suite against a real redis-server
# that this script starts on a loopback port and stops by its pid.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, each as "package:file it provides"
NEEDED=(
  "redis-server:/usr/bin/redis-server"
  "faketime:/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
  "openssl:/usr/bin/openssl"
  "tmux:/usr/bin/tmux"
)
# openssl makes the CA and certificates of the TLS topology tests; the Sentinel tests run
# redis-server --sentinel, so no redis-sentinel package is needed
MISSING=()
for item in "${NEEDED[@]}"; do
  [ -e "${item#*:}" ] || MISSING+=("${item%%:*}")
done
if [ "${#MISSING[@]}" -gt 0 ]; then
  echo "== installing ${MISSING[*]} (Debian packages)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi

# PostgreSQL for the Django tests (tests/django start their own cluster on a loopback port)
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "== installing postgresql (Debian package)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
echo "== installing celery-docket[test]"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"

PORT="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
RDIR="$(mktemp -d)"
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$RDIR" --save '' --appendonly no \
  --daemonize yes --pidfile "$RDIR/redis.pid" --logfile "$RDIR/redis.log"
cleanup() { [ -f "$RDIR/redis.pid" ] && kill "$(cat "$RDIR/redis.pid")" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
export CELERY_DOCKET_TEST_REDIS="redis://127.0.0.1:$PORT/0"
echo "== redis-server $(redis-server --version | awk '{print $3}') on $CELERY_DOCKET_TEST_REDIS"

echo "== ruff"
.venv/bin/ruff check celery_docket tests compat_tests benchmarks examples
.venv/bin/ruff format --check celery_docket tests compat_tests benchmarks examples
echo "== mypy (the package; strict on the engine)"
.venv/bin/mypy celery_docket
echo "== pytest"
MARKS=()
if [ "$#" -eq 0 ]; then
  # the whole suite; compat outcomes are recorded to check MIGRATING.md's matrix against them
  export COMPAT_RESULTS="$RDIR/compat.json"
  # Sentinel/TLS/ACL topologies (about 2 minutes): CELERY_DOCKET_TOPOLOGY=0 leaves them out
  [ "${CELERY_DOCKET_TOPOLOGY:-1}" = 0 ] && MARKS=(-m "not topology")
fi
.venv/bin/python -m pytest -p no:cacheprovider "${MARKS[@]}" "$@"
if [ "$#" -eq 0 ]; then
  echo "== MIGRATING.md compatibility matrix"
  .venv/bin/python compat_tests/render_matrix.py "$COMPAT_RESULTS" --check MIGRATING.md
  echo "== Celery's own integration suite (test_tasks.py, test_canvas.py) vs expected_failures.txt"
  # tests on the list are expected to fail: a short bound keeps their waits from eating CI time
  CELERY_SUITE_TIMEOUT=60 CELERY_SUITE_LISTED_TIMEOUT=10 \
    .venv/bin/python -m compat_tests.celery_suite.run
fi
