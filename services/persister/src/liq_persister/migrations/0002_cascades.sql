-- One row per cascade (liq_common.events.Cascade), upserted as its states arrive: a state replaces the
-- row only when its seq is higher, so a redelivered older state never overwrites a newer one.
CREATE TABLE cascades (
    cascade_id     text             PRIMARY KEY,
    seq            integer          NOT NULL,
    status         text             NOT NULL,
    base           text             NOT NULL,
    window_start   timestamptz      NOT NULL,
    window_end     timestamptz      NOT NULL,
    duration_ms    bigint           NOT NULL,
    count          integer          NOT NULL,
    usd            numeric          NOT NULL,
    long_count     integer          NOT NULL,
    long_usd       numeric          NOT NULL,
    short_count    integer          NOT NULL,
    short_usd      numeric          NOT NULL,
    by_exchange    jsonb            NOT NULL,
    symbols        text[]           NOT NULL,
    exchanges      text[]           NOT NULL,
    price_first    numeric          NOT NULL,
    price_last     numeric          NOT NULL,
    price_min      numeric          NOT NULL,
    price_max      numeric          NOT NULL,
    price_move_pct double precision NOT NULL,
    score          double precision NOT NULL,
    tier           text             NOT NULL,
    factors        jsonb            NOT NULL,
    lower_bound    boolean          NOT NULL,
    coverage       jsonb            NOT NULL,
    emitted_ts     timestamptz      NOT NULL,
    closed_at      timestamptz,
    v              smallint         NOT NULL
);
CREATE INDEX cascades_window_start_idx ON cascades (window_start DESC);
COMMENT ON TABLE cascades IS 'Latest state (highest seq) of each liquidation cascade. Written by liq-persister.';
COMMENT ON COLUMN cascades.closed_at IS 'emitted_ts of the close state; NULL while the cascade is open.';
