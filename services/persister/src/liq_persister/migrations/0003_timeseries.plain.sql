-- Plain PostgreSQL: BRIN indexes on time (tiny, and rows arrive in time order) and liquidations_1m as
-- a view aggregating on read. The bucket expression is IMMUTABLE date_bin, so a filter on bucket is
-- pushed below the GROUP BY and served by the BRIN index on the same expression.
CREATE INDEX liquidations_ts_brin ON liquidations USING brin (ts);
CREATE INDEX liquidations_bucket_brin ON liquidations
    USING brin (date_bin(INTERVAL '1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00'));

CREATE VIEW liquidations_1m AS
SELECT date_bin(INTERVAL '1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       exchange,
       base,
       side,
       count(*)          AS count,
       sum(notional_usd) AS usd,
       min(price)        AS min_price,
       max(price)        AS max_price
FROM liquidations
GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW liquidations_1m IS 'Per minute, exchange, base asset and position side: count, USD, min/max price.';
