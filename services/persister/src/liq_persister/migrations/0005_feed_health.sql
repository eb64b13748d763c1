-- Feed health as data (liq_common.events.FeedStatus on the feed-status stream).
-- feed_status: every lifecycle event of every connection slot, as published.
-- feed_gaps: one row per outage of a connection slot, from its `disconnected` (or, for a silent feed,
-- the time its data stopped) to its next `connected`/`reconnected`; end_ts is NULL while it lasts.
CREATE TABLE feed_status (
    ts       timestamptz NOT NULL,
    exchange text        NOT NULL,
    market   text        NOT NULL,
    conn     text        NOT NULL,
    status   text        NOT NULL,
    reason   text        NOT NULL,
    session  integer     NOT NULL,
    since_ts timestamptz,
    v        smallint    NOT NULL,
    UNIQUE (exchange, market, conn, session, status, ts)
);
CREATE INDEX feed_status_ts_idx ON feed_status (ts DESC);
COMMENT ON TABLE feed_status IS 'Connection lifecycle events of the exchange feeds. Written by liq-persister.';

CREATE TABLE feed_gaps (
    exchange text        NOT NULL,
    market   text        NOT NULL,
    conn     text        NOT NULL,
    start_ts timestamptz NOT NULL,
    end_ts   timestamptz,
    reason   text        NOT NULL,
    PRIMARY KEY (exchange, market, conn, start_ts),
    CHECK (end_ts IS NULL OR end_ts >= start_ts)
);
-- At most one open gap per slot: a second `disconnected` (e.g. after `silent`) joins the open one.
CREATE UNIQUE INDEX feed_gaps_open_idx ON feed_gaps (exchange, market, conn) WHERE end_ts IS NULL;
CREATE INDEX feed_gaps_start_idx ON feed_gaps (start_ts DESC);
COMMENT ON TABLE feed_gaps IS 'Outages of exchange feed connections (NULL end_ts: still down). Written by liq-persister.';

GRANT INSERT ON feed_status TO liq_writer;
GRANT INSERT, UPDATE, SELECT ON feed_gaps TO liq_writer;
GRANT SELECT ON feed_status, feed_gaps TO liq_reader;
