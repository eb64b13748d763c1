#!/bin/sh
# First start of the TimescaleDB container only (docker-entrypoint-initdb.d): create the liq database
# and its login roles with the persister's own script, services/persister/sql/roles.sql (mounted at
# /liq/roles.sql by docker-compose.yml), passwords read from the compose secrets:
#   liq_owner      owns the schema; the persister migrates with it (MIGRATE_DATABASE_URL)
#   liq_persister  runtime writer (DATABASE_URL), member of liq_writer
#   liq_dashboard  Grafana's read-only login, member of liq_reader
# Changing a password later is `ALTER ROLE ... PASSWORD ...`: this script never runs again on a
# non-empty data volume.
set -eu

secret() {
    # Compose mounts each secret as a file; a trailing newline is not part of the password.
    tr -d '\r\n' < "/run/secrets/$1"
}

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v owner_password="$(secret liq_owner_password)" \
    -v persister_password="$(secret liq_persister_password)" \
    -v reader_password="$(secret liq_dashboard_password)" \
    -f /liq/roles.sql
