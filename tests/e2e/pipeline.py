"""The end-to-end run shape shared by the pipeline and fault tests (the checks made after a run are in
:mod:`tests.e2e.checks`).

Shape: the exchange simulator in the test's event loop -> both ingestors -> Redis -> detector, persister,
alerter (each a real child process) -> PostgreSQL and the fake Discord and Telegram of ``tests/alerter``.
A test opens :func:`pipeline`, plays a synthetic scenario (optionally breaking something meanwhile),
then checks the outcome with the helpers below.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import redis.asyncio as aioredis

from liq_common.streams import connect_redis
from liq_exchange_sim import SimConfig, Simulator
from liq_exchange_sim.scenarios.synthetic import GroundTruth, SyntheticConfig
from liq_exchange_sim.truth import Feed
from tests.alerter.fake_discord import FakeDiscord
from tests.alerter.fake_telegram import FakeTelegram
from tests.conftest import Streams
from tests.e2e.processes import ServiceProcess

R = TypeVar("R")

FEEDS: tuple[Feed, ...] = ("binance_usdm", "binance_coinm", "bybit_linear", "bybit_inverse")
SERVICES = ("persister", "detector", "alerter", "ingest-binance", "ingest-bybit")
CONSUMERS = ("persister", "detector", "alerter")

SCENARIO = SyntheticConfig(seed=7, duration_s=600, speed=40)
"""Ten synthetic minutes (two cascade episodes) played in 15 s.

Played at a speed factor rather than as fast as possible: at speed 0 one ingestor can run minutes of
event time ahead of the other, and the detector then counts the slower exchange's events as late."""


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
    detector_shards: int = 1,
) -> AsyncIterator[Pipeline]:
    """Start the fakes, the simulator and the five services; yields once every feed is subscribed.

    ``env`` overrides or adds settings for every service; ``persister_database_url`` gives the persister
    another route to the same database (a proxy the test can cut); ``detector_shards`` > 1 runs the
    detector as that many shards, processes ``detector`` (shard 0), ``detector-1``... On exit every
    service gets SIGTERM; the exit statuses land in :attr:`Pipeline.statuses` (the caller asserts them: all 0).
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
                    if name == "detector" and detector_shards > 1:
                        for k in range(detector_shards):
                            shard = f"detector-{k}" if k else "detector"
                            shard_env = {"SHARD_COUNT": str(detector_shards), "SHARD_INDEX": str(k), "CONSUMER": shard}
                            run.processes[shard] = ServiceProcess(shard, service_env | shard_env, logdir, "detector")
                            run.processes[shard].start()
                        continue
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
