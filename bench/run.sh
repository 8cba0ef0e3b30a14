#!/usr/bin/env bash
# Every benchmark from one command (bench/README.md). Installs what it needs
# (.venv with the dev and bench extras; wrk from Debian on first use), makes
# sure PostgreSQL is up (starts the local cluster if it is installed but
# stopped), then runs `python -m bench` with the arguments given, e.g.
#   bench/run.sh                          # full run: 10k, 100k, 1M
#   bench/run.sh --sizes 10000 100000     # shorter
#   bench/run.sh --smoke                  # seconds
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e '.[dev,bench]'

pg_up() { .venv/bin/python - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", 5432)) == 0 else 1)
PY
}
if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "starting local PostgreSQL cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is needed on 127.0.0.1:5432 (user postgres, trust auth)" >&2; exit 1; }

exec .venv/bin/python -m bench "$@"
