-- Privileges, granted to two cluster-wide NOLOGIN group roles that login roles join
-- (see services/persister/sql/roles.sql):
--   liq_writer: what the persister's runtime role needs and nothing more: INSERT into liquidations
--               (duplicates skipped by ON CONFLICT DO NOTHING, which needs no SELECT), INSERT, UPDATE and
--               SELECT on cascades (the seq-guarded ON CONFLICT DO UPDATE reads EXCLUDED values, which
--               PostgreSQL allows only with SELECT on those columns), SELECT on schema_migrations to
--               check the schema version. No DELETE, TRUNCATE, DDL, and no reading of liquidations.
--   liq_reader: SELECT on everything (dashboards, the liq CLI).
-- The groups are created here when missing (needs CREATEROLE); concurrent creation is tolerated.
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['liq_writer', 'liq_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it at the same moment
            END;
        END IF;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA public TO liq_writer, liq_reader;
GRANT SELECT ON schema_migrations TO liq_writer, liq_reader;
GRANT INSERT ON liquidations TO liq_writer;
GRANT INSERT, UPDATE, SELECT ON cascades TO liq_writer;
GRANT SELECT ON liquidations, cascades, liquidations_1m TO liq_reader;
