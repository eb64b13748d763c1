"""Feed-status events become ``feed_status`` rows and exactly one ``feed_gaps`` row per outage."""

from __future__ import annotations

import psycopg

from liq_common.events import FeedState, FeedStatus
from liq_common.observability import Health
from liq_persister.database import Database, DatabaseStatus
from liq_persister.feed import FeedWriter
from tests.persister.conftest import scalar

T0 = 1_790_000_000_000


def st(status: FeedState, ts: int, reason: str = "", session: int = 1, since_ts: int = 0) -> FeedStatus:
    return FeedStatus(
        exchange="binance",
        market="linear",
        conn="0",
        status=status,
        ts=T0 + ts,
        reason=reason,
        session=session,
        since_ts=T0 + since_ts if since_ts else 0,
    )


async def gaps(url: str) -> list[tuple[int, int | None, str]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            b"SELECT (extract(epoch FROM start_ts) * 1000)::int8, (extract(epoch FROM end_ts) * 1000)::int8, reason"
            b" FROM feed_gaps ORDER BY start_ts"
        )
        return [(int(s) - T0, None if e is None else int(e) - T0, r) for s, e, r in await cur.fetchall()]


async def test_one_outage_is_one_row_and_a_redelivery_changes_nothing(migrated_url: str) -> None:
    db = Database(migrated_url, "feed", DatabaseStatus(Health()), 30.0)
    writer = FeedWriter(db)
    batch = [
        st("connected", 0),
        st("subscribed", 10),
        st("first_data", 20),
        st("disconnected", 1_000, "connection_lost"),
        st("reconnected", 31_000, session=2),
        st("subscribed", 31_010, session=2),
    ]
    try:
        assert await writer.write(batch) == 2  # opened, closed
        assert await writer.write(batch) == 0  # redelivered: already there, nothing open to close
        assert await gaps(migrated_url) == [(1_000, 31_000, "connection_lost")]
        assert await scalar(migrated_url, "SELECT count(*) FROM feed_status") == 6
        # silent: the gap starts when the data stopped; the disconnect that follows joins it
        await writer.write(
            [
                st("silent", 50_000, "no_control_data", session=2, since_ts=40_000),
                st("disconnected", 50_001, "silent", session=2),
                st("reconnected", 50_200, session=3),
            ]
        )
        assert await gaps(migrated_url) == [
            (1_000, 31_000, "connection_lost"),
            (40_000, 50_200, "silent:no_control_data"),
        ]
        # still down at shutdown: an open gap, closed by the next process's first connection
        await writer.write([st("disconnected", 60_000, "shutdown", session=3)])
        assert (await gaps(migrated_url))[-1] == (60_000, None, "shutdown")
        await writer.write([st("connected", 90_000, session=1)])
        assert (await gaps(migrated_url))[-1] == (60_000, 90_000, "shutdown")
    finally:
        await db.close()
