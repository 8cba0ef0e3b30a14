#!/usr/bin/env bash
# Run the whole test suite: installs what the tests need (.venv with the dev
# extra), makes sure PostgreSQL is up (starts the local cluster if it is
# installed but stopped), then ruff, mypy and pytest. The S3 server (moto) and
# the fake WeChat server are started by the test fixtures themselves.
# Under CI=true the PostgreSQL half of the suite is mandatory.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

pg_up() { .venv/bin/python - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", 5432)) == 0 else 1)
PY
}
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting local PostgreSQL cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if ! pg_up; then
  if [ "${CI:-}" = "true" ]; then
    echo "PostgreSQL is mandatory under CI and is not reachable on 127.0.0.1:5432" >&2
    exit 1
  fi
  echo "warning: PostgreSQL not reachable; its half of the suite will be skipped" >&2
fi

# QR posters print village names in Chinese: install a CJK font when we can
# (the app falls back to pinyin without one, and the tests cover both).
if ! fc-list :lang=zh 2>/dev/null | grep -q . && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei) >/dev/null 2>&1 \
    || echo "note: could not install fonts-wqy-microhei; QR posters fall back to pinyin" >&2
fi

# The console's browser tests drive headless Chromium from Debian's package
# (Playwright launches it by path; nothing is downloaded from elsewhere).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "note: could not install chromium; the console's browser tests will be skipped" >&2
fi

# The multi-instance test (tests/deploy/) puts PgBouncer from Debian's package
# in front of a throwaway primary and replica; under CI it must not be skipped.
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ] \
    && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  (apt-get install -y -qq pgbouncer || (apt-get update -qq && apt-get install -y -qq pgbouncer)) \
    >/dev/null 2>&1 \
    || echo "note: could not install pgbouncer; the multi-instance test will be skipped" >&2
fi

# A second S3 server beside moto for the storage contract tests: s3rver from
# the npm registry, kept under .tools/ (skipped when npm is not installed).
if [ ! -x .tools/node_modules/.bin/s3rver ] && command -v npm >/dev/null 2>&1; then
  npm install --silent --no-audit --no-fund --prefix .tools s3rver@3.7.1 >/dev/null 2>&1 \
    || echo "note: could not install s3rver; storage tests run against moto only" >&2
fi

echo "== ruff"
.venv/bin/ruff check app tests bench scripts migrations
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# Given no test paths, the suite runs as two processes, one per core: the
# PostgreSQL-parametrised tests with the slow end-to-end ones (browsers, the
# multi-instance topology, the bench smoke run), and everything else; the two
# -k expressions are each other's complement, so every test runs exactly once
# (measured: 16 + 29 min before the slow ones moved, 32 min wall). Each process has
# its own databases, servers and ports (tests/conftest.py). YDT_TEST_SERIAL=1,
# or any test path in the arguments, runs one process as before.
paths=0
for arg in "$@"; do case "$arg" in -*) ;; *) paths=1 ;; esac; done
set +e
if [ "$paths" = 0 ] && [ "${YDT_TEST_SERIAL:-0}" != "1" ]; then
  logs=$(mktemp -d)
  heavy="postgresql or browser or multi_instance or bench"
  .venv/bin/pytest "$@" -p no:cacheprovider -k "not ($heavy)" >"$logs/other.log" 2>&1 &
  other=$!
  .venv/bin/pytest "$@" -p no:cacheprovider -k "$heavy" >"$logs/postgresql.log" 2>&1 &
  pg=$!
  wait $other; s_other=$?
  wait $pg; s_pg=$?
  echo "-- SQLite and the rest (exit $s_other)"; cat "$logs/other.log"
  echo "-- PostgreSQL and the end-to-end tests (exit $s_pg)"; cat "$logs/postgresql.log"
  status=$(( s_other != 0 ? s_other : s_pg ))
else
  .venv/bin/pytest "$@"
  status=$?
fi
set -e
# pytest exits 5 when nothing was collected: that is a failure here, not a pass.
exit $status
