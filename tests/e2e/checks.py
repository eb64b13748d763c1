"""The checks made after an end-to-end run (:mod:`tests.e2e.pipeline`): exact storage, ground-truth
cascades, and at most one alert per cascade and tier."""

from __future__ import annotations

import contextlib
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from decimal import Decimal

import psycopg
import redis.asyncio as aioredis

from liq_common.codec import CASCADES
from liq_exchange_sim import Simulator
from liq_exchange_sim.scenarios.synthetic import GroundTruth
from tests.alerter.fake_discord import FakeDiscord, render_markdown
from tests.e2e.pipeline import Pipeline
from tests.waiting import eventually

TIERS_ALERTED = ("high", "critical")
FOOTER_ID = re.compile(r"cascade (\S+) ·")

Key = tuple[str, str, str]
"""``(exchange, market, side)``."""
CascadeRow = tuple[str, str, str, list[str], int, int, bool]


# --- storage -----------------------------------------------------------------------------------------


def stored_totals(pg_url: str) -> dict[Key, tuple[int, Decimal]]:
    """Count and USD per (exchange, market, side) in ``liquidations``; fails on a duplicate event."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT exchange, market, side, count(*), sum(notional_usd), count(DISTINCT (exchange, event_id)) "
            "FROM liquidations GROUP BY 1, 2, 3"
        ).fetchall()
    assert all(r[3] == r[5] for r in rows), "duplicate events stored"
    return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}


def delivered_totals(sim: Simulator) -> dict[Key, tuple[int, Decimal]]:
    """What the simulator wrote in good frames, each emitted record once."""
    return {key: (t.count, t.usd) for key, t in sim.ledger.totals().items()}


async def assert_stored_exactly(run: Pipeline, timeout: float = 90) -> dict[Key, tuple[int, Decimal]]:
    """Wait until the database holds exactly the delivered ledger (count and USD per key); returns it."""
    delivered = delivered_totals(run.sim)
    assert sum(c for c, _ in delivered.values()) > 1000
    await eventually(
        lambda: stored_totals(run.pg_url) == delivered, timeout=timeout, what="every delivered event stored"
    )
    return delivered


def stored_keys(pg_url: str) -> Counter[tuple[object, ...]]:
    """Every stored liquidation as (exchange, symbol, side, event ms, price), with multiplicity."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT exchange, symbol, side, (extract(epoch FROM ts) * 1000)::bigint, price FROM liquidations"
        ).fetchall()
    return Counter((r[0], r[1], r[2], int(r[3]), Decimal(r[4])) for r in rows)


# --- cascades and alerts ---------------------------------------------------------------------------


def cascades(pg_url: str) -> list[CascadeRow]:
    """(id, base, tier, exchanges, window start ms, window end ms, closed) of every stored cascade."""
    with psycopg.connect(pg_url) as conn:
        return conn.execute(
            "SELECT cascade_id, base, tier, exchanges, (extract(epoch FROM window_start) * 1000)::bigint, "
            "(extract(epoch FROM window_end) * 1000)::bigint, closed_at IS NOT NULL FROM cascades"
        ).fetchall()


async def tiers_published(redis: aioredis.Redis, stream: str) -> dict[str, list[str]]:
    """Per cascade, the tiers its published states went through, in order."""
    seen: dict[str, list[str]] = defaultdict(list)
    for _, fields in await redis.xrange(stream) or []:
        state = CASCADES.decode(fields)  # type: ignore[arg-type]
        if not seen[state.cascade_id] or seen[state.cascade_id][-1] != state.tier:
            seen[state.cascade_id].append(state.tier)
    return seen


def discord_posts(discord: FakeDiscord) -> list[tuple[str, str]]:
    """(cascade id, tier) of every message the alerter created on the fake Discord."""
    posts = []
    for message in discord.messages.values():
        embed = message.payload["embeds"][0]
        footer = render_markdown(embed["footer"]["text"])
        match = FOOTER_ID.search(footer)
        assert match is not None, footer
        tier = next(t for t in ("critical", "high", "medium", "low") if t.upper() in embed["title"].upper())
        posts.append((match[1], tier))
    return posts


def assert_no_duplicate_alerts(run: Pipeline) -> list[tuple[str, str]]:
    """At most one Discord message per cascade and tier, and no request before a 429's retry_after."""
    posts = discord_posts(run.discord)
    assert len(posts) == len(set(posts)), f"an alert was posted twice: {Counter(posts)}"
    assert not run.discord.early, "a request arrived before retry_after"
    return posts


def check_ground_truth(truth: GroundTruth, found: Sequence[CascadeRow]) -> None:
    """Each cascade episode is ONE cascade at High or above on both exchanges; chop stays below Medium."""
    assert sum(e.kind == "cascade" for e in truth.episodes) == 2
    for episode in truth.episodes:
        overlapping = [c for c in found if c[1] == episode.base and c[4] <= episode.end_ms and c[5] >= episode.start_ms]
        if episode.kind == "cascade":
            strong = [c for c in overlapping if c[2] in TIERS_ALERTED]
            assert len(strong) == 1, (episode, overlapping)
            assert strong[0][3] == ["binance", "bybit"]
        else:
            assert all(c[2] == "low" for c in overlapping), (episode, overlapping)


async def assert_cascades_and_alerts(run: Pipeline, truth: GroundTruth) -> None:
    """Ground-truth cascades stored and closed; one Discord alert per High+ cascade and tier, none twice.

    Waits until the stored cascades are all closed AND match the ground truth: "all closed" alone holds
    while a slower consumer (a detector shard catching up) has not published its cascade yet."""

    def settled() -> bool:
        found = cascades(run.pg_url)
        with contextlib.suppress(AssertionError):
            check_ground_truth(truth, found)
            return bool(found) and all(c[6] for c in found)
        return False

    with contextlib.suppress(AssertionError):  # timed out: the check below says what is missing
        await eventually(settled, timeout=90, what="ground-truth cascades stored and closed")
    published = await tiers_published(run.redis, run.streams.cascades)
    try:
        check_ground_truth(truth, cascades(run.pg_url))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; tiers published on the stream: {dict(published)}") from exc
    assert all(c[6] for c in cascades(run.pg_url)), "a cascade is still open"
    alertable = {cid: [t for t in tiers if t in TIERS_ALERTED] for cid, tiers in published.items()}
    expected = {cid for cid, tiers in alertable.items() if tiers}
    assert len(expected) >= 2
    await eventually(
        lambda: {cid for cid, _ in discord_posts(run.discord)} == expected,
        timeout=60,
        what="a Discord alert for every High+ cascade",
    )
    for cid, tier in assert_no_duplicate_alerts(run):
        assert tier in alertable[cid]
