-- Every normalised liquidation (liq_common.events.Liquidation), one row per exchange event.
-- Money and sizes are exact NUMERIC (the wire carries decimal strings); times are timestamptz built
-- from the event's integer milliseconds. The unique key includes ts so it is valid on a hypertable
-- (a unique index must contain the partitioning column) and redelivery never duplicates a row.
-- The key's text columns use the "C" collation: byte comparison, cheaper per index
-- insert than a linguistic collation, and the order of ids has no meaning anyway.
-- No CHECK constraints repeat the event schema's value sets (side, market, ...): the typed decoder
-- already enforces them, and a value added to the schema must not make PostgreSQL reject events.
CREATE TABLE liquidations (
    ts           timestamptz NOT NULL,
    exchange     text        COLLATE "C" NOT NULL,
    event_id     text        COLLATE "C" NOT NULL,
    market       text        NOT NULL,
    symbol       text        NOT NULL,
    base         text        NOT NULL,
    quote        text        NOT NULL,
    side         text        NOT NULL,
    price        numeric     NOT NULL,
    qty          numeric     NOT NULL,
    notional_usd numeric     NOT NULL,
    contracts    numeric,
    throttled    boolean     NOT NULL DEFAULT false,
    recv_ts      timestamptz NOT NULL,
    v            smallint    NOT NULL,
    CONSTRAINT liquidations_event_key UNIQUE (exchange, event_id, ts)
);
COMMENT ON TABLE liquidations IS 'Normalised liquidations, exactly once per (exchange, event_id, ts). Written by liq-persister.';
COMMENT ON COLUMN liquidations.side IS 'Side of the liquidated POSITION (long/short), never the order side.';
COMMENT ON COLUMN liquidations.throttled IS 'The feed publishes at most one liquidation per symbol per interval: totals are lower bounds.';
