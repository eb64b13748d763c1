-- Login roles and database of the persister, run ONCE per cluster by an administrator, before the first
-- `liq-persister migrate`. psql variables (passwords come from the environment of the caller):
--
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 \
--        -v owner_password="$LIQ_OWNER_PASSWORD" -v persister_password="$LIQ_PERSISTER_PASSWORD" \
--        -v reader_password="$LIQ_READER_PASSWORD" -f services/persister/sql/roles.sql
--
-- Roles:
--   liq_owner      LOGIN; owns database liq and, through the migrations, every table and view in it.
--                  MIGRATE_DATABASE_URL=postgresql://liq_owner:...@host/liq
--   liq_writer     NOLOGIN group; privileges granted by migration 0004_grants.sql: INSERT on
--                  liquidations, INSERT/UPDATE/SELECT on cascades, SELECT on schema_migrations.
--                  Nothing else (no DELETE, TRUNCATE, DDL, no reading of liquidations).
--   liq_persister  LOGIN, member of liq_writer: the persister's runtime role.
--                  DATABASE_URL=postgresql://liq_persister:...@host/liq
--   liq_reader     NOLOGIN group with SELECT on liquidations, cascades, liquidations_1m, feed_status, feed_gaps.
--   liq_dashboard  LOGIN, member of liq_reader: Grafana, the `liq stats` CLI.
--
-- The migrations also create liq_writer / liq_reader when missing (if the migrating role may).
-- TimescaleDB: the owner must be able to CREATE EXTENSION timescaledb (the extension is created here,
-- as the administrator, when it is available, so the owner does not need superuser).

SELECT 'CREATE ROLE liq_writer NOLOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'liq_writer')
\gexec
SELECT 'CREATE ROLE liq_reader NOLOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'liq_reader')
\gexec
SELECT format('CREATE ROLE liq_owner LOGIN PASSWORD %L', :'owner_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'liq_owner')
\gexec
SELECT format('CREATE ROLE liq_persister LOGIN PASSWORD %L IN ROLE liq_writer', :'persister_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'liq_persister')
\gexec
SELECT format('CREATE ROLE liq_dashboard LOGIN PASSWORD %L IN ROLE liq_reader', :'reader_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'liq_dashboard')
\gexec
SELECT 'CREATE DATABASE liq OWNER liq_owner' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'liq')
\gexec

\connect liq
-- PostgreSQL 15+ already revokes CREATE on schema public from PUBLIC; older clusters need this.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SELECT 'CREATE EXTENSION IF NOT EXISTS timescaledb'
WHERE EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb')
\gexec
