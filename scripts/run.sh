#!/usr/bin/env bash
# Start the service on the embedded default (SQLite + local media under ./var):
# creates .venv, installs, migrates, seeds, creates demo accounts, then serves
# on 127.0.0.1:8000 with `ydt worker` beside it (notices, red-card orders).
# Ctrl-C or SIGTERM stops both. Pass YDT_* variables to run against
# PostgreSQL / MinIO; HOST, PORT and WORKERS choose where and how it serves,
# WORKER_INTERVAL the seconds between the worker's rounds (30).
# SKIP_SETUP=1 skips install/migrate/seed/demo (an already prepared ./var),
# and VENV names another virtualenv that has the package installed.
# Once serving, it prints the console's address and the demo accounts
# (DEMO_PASSWORD, default Demo#2026, is the password `ydt demo` gives them).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ "${SKIP_SETUP:-0}" != 1 ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e .

  "$VENV/bin/ydt" migrate
  "$VENV/bin/ydt" seed
  "$VENV/bin/ydt" demo --password "${DEMO_PASSWORD:-Demo#2026}"
fi

# Two processes, one command: the server and the worker. Whichever ends first
# (or a signal to this script) stops the other, and the script waits for both,
# so no worker is left running without its server.
server= worker=
stop() {
  trap - INT TERM
  for pid in $server $worker; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $server $worker; do
    wait "$pid" 2>/dev/null || true
  done
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

# The worker reaches the server at the address it serves (as `ydt serve` derives
# it on the embedded default): where the built-in WeChat stand-in answers.
bind_host=${HOST:-127.0.0.1}
case "$bind_host" in
  0.0.0.0|"") served_host=127.0.0.1 ;;
  ::) served_host="[::1]" ;;
  *:*) served_host="[$bind_host]" ;;
  *) served_host="$bind_host" ;;
esac
worker_env=()
if [ -z "${YDT_PUBLIC_BASE_URL:-}" ] && ! grep -qs '^YDT_PUBLIC_BASE_URL=' .env; then
  worker_env=("YDT_PUBLIC_BASE_URL=http://${served_host}:${PORT:-8000}")
fi

env "${worker_env[@]}" "$VENV/bin/ydt" worker --interval "${WORKER_INTERVAL:-30}" &
worker=$!
# The worker runs the statistics projector: the server's processes leave it
# to the worker and spend their time on requests (bench/README.md).
YDT_PROJECTOR_IN_APP=${YDT_PROJECTOR_IN_APP:-false} "$VENV/bin/ydt" serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --workers "${WORKERS:-1}" &
server=$!
echo "serving on http://${HOST:-127.0.0.1}:${PORT:-8000} (pid $server), worker pid $worker; Ctrl-C stops both"
"$VENV/bin/python" -c 'import sys; from app.reference.demo import guide; print(guide(sys.argv[1], sys.argv[2]))' \
  "http://${HOST:-127.0.0.1}:${PORT:-8000}" "${DEMO_PASSWORD:-Demo#2026}" || true

status=0
wait -n "$server" "$worker" || status=$?
stop
exit "$status"
