"""Feed health lines of ``liq check``: per connection slot, connected or not; per feed, the age of its
newest stored liquidation and its outages (``feed_gaps``) in the last 24 hours.

Reads what liq-persister stores from the feed-status stream (``feed_status``, ``feed_gaps``). A slot whose
latest lifecycle event is ``disconnected`` or ``silent`` is a problem; so is an outage still open. Closed
gaps are reported on the ``ok`` line of their feed (count, total time, longest), not as problems: they
are history, already reflected in the ``coverage`` of the cascades they overlapped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg

from liq_cli import database
from liq_cli.database import Conn
from liq_cli.money import age

if TYPE_CHECKING:
    from liq_cli.check import Report

_LATEST = b"""
SELECT DISTINCT ON (exchange, market, conn) exchange, market, conn, status, reason, ts
FROM feed_status WHERE ts >= %s
ORDER BY exchange, market, conn, ts DESC
"""
_NEWEST = b"""
SELECT exchange, market, max(ts) FROM liquidations WHERE ts >= %s GROUP BY exchange, market
"""
_GAPS = b"""
SELECT exchange, market, count(*),
       coalesce(sum(extract(epoch FROM coalesce(end_ts, now()) - greatest(start_ts, %s))), 0),
       coalesce(max(extract(epoch FROM coalesce(end_ts, now()) - start_ts)), 0),
       count(*) FILTER (WHERE end_ts IS NULL)
FROM feed_gaps WHERE coalesce(end_ts, now()) >= %s
GROUP BY exchange, market
"""
DOWN = frozenset({"disconnected", "silent"})


async def feed_health(conn: Conn, report: Report) -> None:
    """Append the feed-health lines to ``report``."""
    now = datetime.now(UTC)
    day = now - timedelta(days=1)
    try:
        slots = await (await conn.execute(_LATEST, (now - timedelta(days=7),))).fetchall()
        newest = await (await conn.execute(_NEWEST, (day,))).fetchall()
        gaps = await (await conn.execute(_GAPS, (day, day))).fetchall()
    except psycopg.Error as exc:
        report.problem("feeds", f"cannot read feed health: {database.first_line(exc)}")
        return
    if not slots:
        report.ok("feeds", "no feed status recorded in the last 7 days (ingestors older than feed health?)")
    for exchange, market, slot, status, reason, ts in slots:
        name = f"{exchange}:{market}#{slot}"
        since = age((now - ts).total_seconds()) if isinstance(ts, datetime) else "?"
        if status in DOWN:
            why = f" ({reason})" if reason else ""
            report.problem("feeds", f"{name}: {status}{why} for {since}")
        else:
            report.ok("feeds", f"{name}: connected ({status} {since} ago)")
    ages = {(str(e), str(m)): ts for e, m, ts in newest if isinstance(ts, datetime)}
    outages = {(str(e), str(m)): row for e, m, *row in gaps}
    for key in sorted(set(ages) | set(outages) | {(str(e), str(m)) for e, m, *_ in slots}):
        last = ages.get(key)
        data = f"newest liquidation {age((now - last).total_seconds())} ago" if last else "no liquidation in 24 h"
        row = outages.get(key)
        if row is None:
            report.ok("feeds", f"{key[0]}:{key[1]}: {data}; no gaps in the last 24 h")
            continue
        count, total, longest, still_open = (int(str(row[0])), float(str(row[1])), float(str(row[2])), int(str(row[3])))
        spent = f"{age(total)} in all, longest {age(longest)}"
        detail = f"{key[0]}:{key[1]}: {data}; {count} gap(s) in the last 24 h, {spent}"
        if still_open:
            report.problem("feeds", f"{detail}; {still_open} still open")
        else:
            report.ok("feeds", detail)
