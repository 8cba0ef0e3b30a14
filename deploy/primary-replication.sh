#!/bin/sh
# Runs once, when the primary's data folder is created (docker-entrypoint-initdb.d):
# lets the replica stream WAL as the ydt user over the compose network.
set -eu
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
