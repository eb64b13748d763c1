"""Feed health rows: every :class:`~liq_common.events.FeedStatus` event, and one gap row per outage.

One batch of status events is one transaction, applied in stream order:

* every event is inserted into ``feed_status`` (a redelivered event is skipped by its unique key);
* ``disconnected`` opens a gap of its slot at the event time; ``silent`` opens it at ``since_ts``, when the
  connection's data stopped, since that is when the feed stopped telling the truth (the
  ``disconnected`` that follows joins the open gap: at most one open gap per slot, a partial unique index);
* ``connected`` / ``reconnected`` closes the slot's open gap at the event time.

So an outage is exactly one row whatever the number of failed reconnection attempts in between (the
ingestor publishes nothing for those), and a redelivered batch changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import psycopg

from liq_common.events import FeedStatus
from liq_persister import metrics
from liq_persister.database import Database

Conn = psycopg.AsyncConnection[tuple[object, ...]]

# Times are integer ms on the wire: epoch + ms * 1 ms (as in writer.py).
_STATUS = b"""
INSERT INTO feed_status (ts, exchange, market, conn, status, reason, session, since_ts, v)
VALUES (timestamptz 'epoch' + %s::int8 * interval '1 millisecond', %s, %s, %s, %s, %s, %s,
        CASE WHEN %s::int8 > 0 THEN timestamptz 'epoch' + %s::int8 * interval '1 millisecond' END, %s)
ON CONFLICT DO NOTHING
"""
_OPEN = b"""
INSERT INTO feed_gaps (exchange, market, conn, start_ts, reason)
VALUES (%s, %s, %s, timestamptz 'epoch' + %s::int8 * interval '1 millisecond', %s)
ON CONFLICT DO NOTHING
"""
_CLOSE = b"""
UPDATE feed_gaps SET end_ts = timestamptz 'epoch' + %s::int8 * interval '1 millisecond'
WHERE exchange = %s AND market = %s AND conn = %s AND end_ts IS NULL
  AND start_ts <= timestamptz 'epoch' + %s::int8 * interval '1 millisecond'
"""

OPENS = frozenset({"disconnected", "silent"})
CLOSES = frozenset({"connected", "reconnected"})


def gap_start(event: FeedStatus) -> tuple[int, str]:
    """Start (ms) and reason of the gap ``event`` opens."""
    if event.status == "silent":
        return (event.since_ts or event.ts), f"silent:{event.reason}"
    return event.ts, event.reason or "disconnected"


class FeedWriter:
    """Writes batches of feed-status events (``feed_status``) and the gaps they imply (``feed_gaps``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows = metrics.ROWS_WRITTEN.labels("feed_status")
        self._gaps = metrics.ROWS_WRITTEN.labels("feed_gaps")
        self._size = metrics.BATCH_ROWS.labels("feed_status")
        self._seconds = metrics.BATCH_SECONDS.labels("feed_status")

    async def write(self, events: Sequence[FeedStatus]) -> int:
        """Apply ``events`` in order in one transaction; returns gap rows opened or closed."""
        started = time.perf_counter()
        changed = 0
        async with self.db.transaction() as conn:
            cur = conn.cursor()
            for e in events:
                await cur.execute(
                    _STATUS,
                    (e.ts, e.exchange, e.market, e.conn, e.status, e.reason, e.session, e.since_ts, e.since_ts, e.v),
                )
                self._rows.inc(max(cur.rowcount, 0))
                key = (e.exchange, e.market, e.conn)
                if e.status in OPENS:
                    start, reason = gap_start(e)
                    await cur.execute(_OPEN, (*key, start, reason))
                    changed += max(cur.rowcount, 0)
                elif e.status in CLOSES:
                    await cur.execute(_CLOSE, (e.ts, *key, e.ts))
                    changed += max(cur.rowcount, 0)
        self._gaps.inc(changed)
        self._size.observe(len(events))
        self._seconds.observe(time.perf_counter() - started)
        return changed

    async def handle(self, batch: list[tuple[bytes, FeedStatus]]) -> None:
        """Consumer-runner handler: apply the batch; returning means committed."""
        await self.write([event for _, event in batch])
