"""The end-to-end run shape shared by the pipeline and fault tests, and the checks made after a run.

Shape: the exchange simulator in the test's event loop -> both ingestors -> Redis -> detector, persister,
alerter (each a real child process) -> PostgreSQL and the fake Discord and Telegram of ``tests/alerter``.
A test opens :func:`pipeline`, plays a synthetic scenario (optionally breaking something meanwhile),
then checks the outcome with the helpers below.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import psycopg
import redis.asyncio as aioredis

from liq_common.codec import CASCADES
from liq_common.streams import connect_redis
from liq_exchange_sim import SimConfig, Simulator
from liq_exchange_sim.scenarios.synthetic import GroundTruth, SyntheticConfig
from liq_exchange_sim.truth import Feed
from tests.alerter.fake_discord import FakeDiscord, render_markdown
from tests.alerter.fake_telegram import FakeTelegram
from tests.conftest import Streams
from tests.e2e.processes import ServiceProcess
from tests.waiting import eventually

R = TypeVar("R")

FEEDS: tuple[Feed, ...] = ("binance_usdm", "binance_coinm", "bybit_linear", "bybit_inverse")
SERVICES = ("persister", "detector", "alerter", "ingest-binance", "ingest-bybit")
CONSUMERS = ("persister", "detector", "alerter")
TIERS_ALERTED = ("high", "critical")
FOOTER_ID = re.compile(r"cascade (\S+) ·")

SCENARIO = SyntheticConfig(seed=7, duration_s=600, speed=40)
"""Ten synthetic minutes (two cascade episodes) played in 15 s.

Played at a speed factor rather than as fast as possible: at speed 0 one ingestor can run minutes of
event time ahead of the other, and the detector then counts the slower exchange's events as late."""

Key = tuple[str, str, str]
"""``(exchange, market, side)``."""
CascadeRow = tuple[str, str, str, list[str], int, int, bool]


def sim_env(sim: Simulator) -> dict[str, str]:
    """The ingestors' exchange URLs pointing at the simulator."""
    return {
        "BINANCE_USDM_WS_URL": f"{sim.binance_usdm_ws}/market/stream?streams=!forceOrder@arr",
        "BINANCE_COINM_WS_URL": f"{sim.binance_coinm_ws}/stream?streams=!forceOrder@arr",
        "BINANCE_USDM_REST_URL": sim.binance_usdm_rest,
        "BINANCE_COINM_REST_URL": sim.binance_coinm_rest,
        "BYBIT_LINEAR_WS_URL": f"{sim.bybit_ws}/v5/public/linear",
        "BYBIT_INVERSE_WS_URL": f"{sim.bybit_ws}/v5/public/inverse",
        "BYBIT_REST_URL": sim.bybit_rest,
    }


@dataclass
class Pipeline:
    """A running stack: the simulator, the fakes and one :class:`ServiceProcess` per service."""

    sim: Simulator
    discord: FakeDiscord
    telegram: FakeTelegram
    redis: aioredis.Redis
    streams: Streams
    pg_url: str
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)

    async def play(self, config: SyntheticConfig = SCENARIO) -> GroundTruth:
        """Play the scenario, then close every open throttle/batch window; returns its ground truth."""
        truth = await self.sim.run_synthetic(config)
        await self.sim.flush()
        return truth

    async def play_during(self, fault: Awaitable[R]) -> tuple[GroundTruth, R]:
        """Play the scenario while ``fault`` runs beside it; returns the ground truth and the fault's result."""
        task = asyncio.ensure_future(fault)
        try:
            truth = await self.play()
        except BaseException:
            task.cancel()
            raise
        return truth, await task

    def restart(self, name: str) -> None:
        """SIGKILL ``name`` and start it again."""
        self.processes[name].kill()
        self.processes[name].start()


@asynccontextmanager
async def pipeline(
    redis_url: str,
    streams: Streams,
    pg_url: str,
    logdir: Path,
    *,
    sim_config: SimConfig | None = None,
    env: dict[str, str] | None = None,
    persister_database_url: str | None = None,
) -> AsyncIterator[Pipeline]:
    """Start the fakes, the simulator and the five services; yields once every feed is subscribed.

    ``env`` overrides or adds settings for every service; ``persister_database_url`` gives the persister
    another route to the same database (a proxy the test can cut). On exit every service gets SIGTERM;
    the exit statuses land in :attr:`Pipeline.statuses` (the caller asserts them: all 0).
    """
    discord = await FakeDiscord(capacity=100, window=1.0).start()
    telegram = await FakeTelegram("42:tg-secret-token", {"-1001"}).start()
    webhook = discord.add_webhook("777", "dc-secret-token")
    destinations = [
        {"kind": "discord", "name": "ops", "webhook_url": webhook, "min_tier": "high"},
        {"kind": "telegram", "name": "desk", "bot_token": "42:tg-secret-token", "chat_id": "-1001", "min_tier": "high"},
    ]
    client = connect_redis(redis_url)
    try:
        async with Simulator(sim_config or SimConfig()) as sim:
            common = {
                **streams.env(),
                **sim_env(sim),
                "REDIS_URL": redis_url,
                "DATABASE_URL": pg_url,
                "DASH_PREFIX": f"{streams.prefix}dash:",
                "DESTINATIONS": json.dumps(destinations),
                "DISCORD_API_BASE": discord.api_base,
                "TELEGRAM_API_BASE": telegram.api_base,
                "EDIT_INTERVAL": "0.2",
                "IDLE_MS": "2000",
                **(env or {}),
            }
            run = Pipeline(sim, discord, telegram, client, streams, pg_url)
            try:
                for name in SERVICES:
                    service_env = dict(common)
                    if name == "persister" and persister_database_url is not None:
                        service_env["DATABASE_URL"] = persister_database_url
                    run.processes[name] = ServiceProcess(name, service_env, logdir)
                    run.processes[name].start()
                await sim.wait_for(
                    lambda s: all(any(c.stats.subscriptions > 0 for c in s.connections(f)) for f in FEEDS), timeout=60
                )
                yield run
            finally:
                run.statuses = {name: p.stop() for name, p in run.processes.items()}
    finally:
        await client.aclose()
        await discord.close()
        await telegram.close()


def assert_clean_exit(run: Pipeline) -> None:
    """Every service exited 0 on SIGTERM (drained and flushed)."""
    failed = {name: run.processes[name].tail() for name, status in run.statuses.items() if status != 0}
    assert not failed, (run.statuses, failed)


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
    """Ground-truth cascades stored and closed; one Discord alert per High+ cascade and tier, none twice."""
    await eventually(
        lambda: bool(found := cascades(run.pg_url)) and all(c[6] for c in found), timeout=90, what="cascades closed"
    )
    published = await tiers_published(run.redis, run.streams.cascades)
    try:
        check_ground_truth(truth, cascades(run.pg_url))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; tiers published on the stream: {dict(published)}") from exc
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
