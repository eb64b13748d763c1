"""The whole pipeline as users run it: simulator -> both ingestors -> Redis -> detector, persister, alerter.

Every service is a real child process; only the exchanges, Discord and Telegram are fakes. The database must
hold exactly what the simulator delivered (count and USD per exchange, market and side), the cascades must
match the scenario's ground truth, and every cascade gets at most one alert per tier, also when every
consumer is killed with SIGKILL in the middle of the run and restarted.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import redis.asyncio as aioredis

from liq_common.codec import CASCADES
from liq_exchange_sim import SimConfig, Simulator
from liq_exchange_sim.scenarios.synthetic import GroundTruth, SyntheticConfig
from tests.alerter.fake_discord import FakeDiscord, render_markdown
from tests.alerter.fake_telegram import FakeTelegram
from tests.conftest import Streams
from tests.e2e.processes import ServiceProcess
from tests.waiting import eventually

FEEDS = ("binance_usdm", "binance_coinm", "bybit_linear", "bybit_inverse")
CONSUMERS = ("persister", "detector", "alerter")
TIERS_ALERTED = ("high", "critical")
FOOTER_ID = re.compile(r"cascade (\S+) ·")


def sim_env(sim: Simulator) -> dict[str, str]:
    return {
        "BINANCE_USDM_WS_URL": f"{sim.binance_usdm_ws}/market/stream?streams=!forceOrder@arr",
        "BINANCE_COINM_WS_URL": f"{sim.binance_coinm_ws}/stream?streams=!forceOrder@arr",
        "BINANCE_USDM_REST_URL": sim.binance_usdm_rest,
        "BINANCE_COINM_REST_URL": sim.binance_coinm_rest,
        "BYBIT_LINEAR_WS_URL": f"{sim.bybit_ws}/v5/public/linear",
        "BYBIT_INVERSE_WS_URL": f"{sim.bybit_ws}/v5/public/inverse",
        "BYBIT_REST_URL": sim.bybit_rest,
    }


def stored_totals(pg_url: str) -> dict[tuple[str, str, str], tuple[int, Decimal]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT exchange, market, side, count(*), sum(notional_usd), count(DISTINCT (exchange, event_id)) "
            "FROM liquidations GROUP BY 1, 2, 3"
        ).fetchall()
    assert all(r[3] == r[5] for r in rows), "duplicate events stored"
    return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}


def delivered_totals(sim: Simulator) -> dict[tuple[str, str, str], tuple[int, Decimal]]:
    return {key: (t.count, t.usd) for key, t in sim.ledger.totals().items()}


def cascades(pg_url: str) -> list[tuple[str, str, str, list[str], int, int, bool]]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute(
            "SELECT cascade_id, base, tier, exchanges, (extract(epoch FROM window_start) * 1000)::bigint, "
            "(extract(epoch FROM window_end) * 1000)::bigint, closed_at IS NOT NULL FROM cascades"
        ).fetchall()


async def tiers_published(redis: aioredis.Redis, stream: str) -> dict[str, list[str]]:
    """Per cascade, the tiers its published states went through, in order."""
    seen: dict[str, list[str]] = defaultdict(list)
    for _, fields in await redis.xrange(stream):
        state = CASCADES.decode(fields)
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


def check_ground_truth(truth: GroundTruth, found: list[tuple[str, str, str, list[str], int, int, bool]]) -> None:
    """Each cascade episode is ONE cascade at High or above on both exchanges; chop stays below Medium."""
    for episode in truth.episodes:
        overlapping = [c for c in found if c[1] == episode.base and c[4] <= episode.end_ms and c[5] >= episode.start_ms]
        if episode.kind == "cascade":
            strong = [c for c in overlapping if c[2] in TIERS_ALERTED]
            assert len(strong) == 1, (episode, overlapping)
            assert strong[0][3] == ["binance", "bybit"]
        else:
            assert all(c[2] == "low" for c in overlapping), (episode, overlapping)


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", ["none", "kill-consumers"])
async def test_pipeline_end_to_end(
    fault: str, redis: aioredis.Redis, redis_url: str, streams: Streams, pg_url: str, tmp_path: Path
) -> None:
    """Exact storage, ground-truth cascades and one alert per cascade and tier (also across SIGKILLs)."""
    discord = await FakeDiscord(capacity=100, window=1.0).start()
    telegram = await FakeTelegram("42:tg-secret-token", {"-1001"}).start()
    webhook = discord.add_webhook("777", "dc-secret-token")
    destinations = [
        {"kind": "discord", "name": "ops", "webhook_url": webhook, "min_tier": "high"},
        {"kind": "telegram", "name": "desk", "bot_token": "42:tg-secret-token", "chat_id": "-1001", "min_tier": "high"},
    ]
    config = SyntheticConfig(seed=7, duration_s=600, speed=0 if fault == "none" else 40)
    processes: dict[str, ServiceProcess] = {}
    async with Simulator(SimConfig()) as sim:
        env = {
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
        }
        for name in ("persister", "detector", "alerter", "ingest-binance", "ingest-bybit"):
            processes[name] = ServiceProcess(name, env, tmp_path)
            processes[name].start()
        try:
            await sim.wait_for(
                lambda s: all(any(c.stats.subscriptions > 0 for c in s.connections(f)) for f in FEEDS), timeout=60
            )
            if fault == "kill-consumers":

                async def crash_consumers() -> None:
                    await sim.wait_for(lambda s: s.stats.frames_sent >= 1500, timeout=120)
                    for name in CONSUMERS:
                        processes[name].kill()
                    for name in CONSUMERS:
                        processes[name].start()

                killer = asyncio.create_task(crash_consumers())
                truth = await sim.run_synthetic(config)
                await killer
            else:
                truth = await sim.run_synthetic(config)
            await sim.flush()
            delivered = delivered_totals(sim)
            assert sum(c for c, _ in delivered.values()) > 1000

            await eventually(
                lambda: stored_totals(pg_url) == delivered, timeout=90, what="every delivered event stored"
            )
            await eventually(
                lambda: (found := cascades(pg_url)) and all(c[6] for c in found), timeout=90, what="cascades closed"
            )
            found = cascades(pg_url)
            assert sum(e.kind == "cascade" for e in truth.episodes) == 2
            check_ground_truth(truth, found)

            published = await tiers_published(redis, streams.cascades)
            alertable = {cid: [t for t in tiers if t in TIERS_ALERTED] for cid, tiers in published.items()}
            expected_cascades = {cid for cid, tiers in alertable.items() if tiers}
            assert len(expected_cascades) >= 2
            await eventually(
                lambda: {cid for cid, _ in discord_posts(discord)} == expected_cascades,
                timeout=60,
                what="a Discord alert for every High+ cascade",
            )
            posts = discord_posts(discord)
            assert len(posts) == len(set(posts)), f"an alert was posted twice: {Counter(posts)}"
            for cid, tier in posts:
                assert tier in alertable[cid]
            assert not discord.early, "a request arrived before retry_after"
        finally:
            statuses = {name: p.stop() for name, p in processes.items()}
            await discord.close()
            await telegram.close()
    assert statuses == dict.fromkeys(processes, 0), {n: processes[n].tail() for n, s in statuses.items() if s}
    if fault == "kill-consumers":
        assert all(processes[name].starts == 2 for name in CONSUMERS)
