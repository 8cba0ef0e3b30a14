#!/usr/bin/env bash
# Start the service on the embedded default (SQLite + local media under ./var):
# creates .venv, installs, migrates, seeds, creates demo accounts and serves
# on 127.0.0.1:8000. Pass YDT_* variables to run against PostgreSQL / MinIO.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .

.venv/bin/ydt migrate
.venv/bin/ydt seed
.venv/bin/ydt demo
exec .venv/bin/ydt serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --workers "${WORKERS:-1}"
