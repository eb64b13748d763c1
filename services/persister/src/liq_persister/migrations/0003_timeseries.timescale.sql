-- TimescaleDB: liquidations becomes a hypertable with 1-day chunks, chunks older than 7 days are
-- compressed, and liquidations_1m is a real-time continuous aggregate (materialised minutes plus the
-- not-yet-materialised tail), so it returns the same rows as the plain-PostgreSQL view.
CREATE EXTENSION IF NOT EXISTS timescaledb;

SELECT create_hypertable('liquidations', 'ts', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => TRUE, migrate_data => TRUE);

-- Every column of the unique key is a segmentby or orderby column, so a late duplicate landing in a
-- compressed chunk is found without decompressing the whole chunk.
ALTER TABLE liquidations SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'exchange, base',
    timescaledb.compress_orderby = 'ts DESC, event_id'
);
SELECT add_compression_policy('liquidations', INTERVAL '7 days', if_not_exists => TRUE);

-- WITH NO DATA: a continuous aggregate WITH DATA cannot be created inside a transaction; the policy fills it.
CREATE MATERIALIZED VIEW liquidations_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket,
       exchange,
       base,
       side,
       count(*)          AS count,
       sum(notional_usd) AS usd,
       min(price)        AS min_price,
       max(price)        AS max_price
FROM liquidations
GROUP BY bucket, exchange, base, side
WITH NO DATA;
SELECT add_continuous_aggregate_policy('liquidations_1m',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE);
