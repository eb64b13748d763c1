"""Entry point: ``python -m liq_exchange_sim`` or the ``liq-exchange-sim`` script.

Serves Binance USD-M on ``--port``, Binance COIN-M on ``--port``+1 and Bybit on ``--port``+2, prints one
``LISTEN <name> <url>`` line per base URL, plays the scenario, and runs until SIGTERM/SIGINT (exit 0), or
until the scenario ends with ``--exit-when-done``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence

import msgspec
import structlog

from liq_common.runtime import ServiceContext, run_service
from liq_common.settings import load_or_exit
from liq_exchange_sim.config import SimConfig
from liq_exchange_sim.instruments import Universe
from liq_exchange_sim.scenarios.synthetic import SyntheticConfig
from liq_exchange_sim.server import Simulator
from liq_exchange_sim.settings import Settings

log = structlog.get_logger("liq_exchange_sim")


def parse_args(settings: Settings, argv: Sequence[str] | None = None) -> Settings:
    """Apply command-line flags over the environment settings."""
    parser = argparse.ArgumentParser(prog="liq-exchange-sim", description=__doc__)
    parser.add_argument("--scenario", default=settings.sim_scenario, help="'synthetic' or a JSON-lines file")
    parser.add_argument("--seed", type=int, default=settings.sim_seed)
    parser.add_argument("--speed", type=float, default=settings.sim_speed, help="1 real time, 100, 0 = max")
    parser.add_argument("--host", default=settings.sim_host)
    parser.add_argument("--port", type=int, default=settings.sim_port, help="USD-M port; COIN-M +1, Bybit +2")
    parser.add_argument("--start-ms", type=int, default=settings.sim_start_ms, help="synthetic start; 0 = now")
    parser.add_argument("--duration", type=float, default=settings.sim_duration, help="synthetic seconds")
    parser.add_argument("--rebase-time", action="store_true", default=settings.sim_rebase_time)
    parser.add_argument("--exit-when-done", action="store_true", default=settings.sim_exit_when_done)
    parser.add_argument("--linear-extra", type=int, default=settings.sim_linear_extra)
    parser.add_argument("--wait-feeds", default=settings.sim_wait_feeds, help="feeds that need a subscriber first")
    ns = parser.parse_args(argv)
    return msgspec.structs.replace(
        settings,
        sim_scenario=ns.scenario,
        sim_seed=ns.seed,
        sim_speed=ns.speed,
        sim_host=ns.host,
        sim_port=ns.port,
        sim_start_ms=ns.start_ms,
        sim_duration=ns.duration,
        sim_rebase_time=ns.rebase_time,
        sim_exit_when_done=ns.exit_when_done,
        sim_linear_extra=ns.linear_extra,
        sim_wait_feeds=ns.wait_feeds,
    )


def sim_config(settings: Settings) -> SimConfig:
    """Listener ports P, P+1, P+2 (all random when P is 0) and a totals-only ledger for long runs."""
    port = settings.sim_port
    return SimConfig(
        host=settings.sim_host,
        binance_usdm_port=port,
        binance_coinm_port=port + 1 if port else 0,
        bybit_port=port + 2 if port else 0,
        instruments=Universe.default(bybit_linear_extra=settings.sim_linear_extra),
        keep_ledger_entries=False,
    )


async def wait_for_subscribers(sim: Simulator, settings: Settings) -> None:
    """Wait until every feed in ``sim_wait_feeds`` has a client with a subscription (or the timeout)."""
    feeds = [f.strip() for f in settings.sim_wait_feeds.split(",") if f.strip()]
    if not feeds:
        return

    def subscribed(s: Simulator) -> bool:
        return all(any(c.stats.subscriptions > 0 for c in s.connections(feed)) for feed in feeds)  # type: ignore[arg-type]

    try:
        await sim.wait_for(subscribed, timeout=settings.sim_wait_timeout)
        log.info("subscribers_ready", feeds=feeds)
    except TimeoutError:
        log.warning("subscribers_missing_starting_anyway", feeds=feeds, waited_s=settings.sim_wait_timeout)


async def play(sim: Simulator, settings: Settings) -> None:
    """Run the configured scenario once (after the awaited subscribers, if any)."""
    await wait_for_subscribers(sim, settings)
    if settings.sim_scenario == "synthetic":
        start = settings.sim_start_ms or int(time.time() * 1000)
        config = SyntheticConfig(
            seed=settings.sim_seed, start_ms=start, duration_s=settings.sim_duration, speed=settings.sim_speed
        )
        truth = await sim.run_synthetic(config, live=not settings.sim_start_ms)
        log.info("synthetic_done", ground_truth=msgspec.to_builtins(truth))
    else:
        rebase = int(time.time() * 1000) if settings.sim_rebase_time else None
        count = await sim.replay(settings.sim_scenario, speed=settings.sim_speed, rebase_to_ms=rebase, anchor_ms=rebase)
        log.info("replay_done", records=count)


def main(argv: Sequence[str] | None = None) -> None:
    """Load settings (env, then flags) and serve until SIGTERM/SIGINT or the scenario's end."""
    settings = parse_args(load_or_exit(Settings, os.environ), argv)

    async def body(ctx: ServiceContext) -> None:
        async with Simulator(sim_config(settings)) as sim:
            for name, url in sim.urls().items():
                print(f"LISTEN {name} {url}", flush=True)
            scenario = asyncio.create_task(play(sim, settings), name="scenario")
            stopper = asyncio.create_task(ctx.stop.wait(), name="stop")
            await asyncio.wait((scenario, stopper), return_when=asyncio.FIRST_COMPLETED)
            if scenario.done():
                scenario.result()  # surface a scenario failure as exit 1
                print("SCENARIO_DONE", flush=True)
                if not settings.sim_exit_when_done:
                    await stopper
            stopper.cancel()
            scenario.cancel()
            await asyncio.gather(scenario, stopper, return_exceptions=True)
            log.info("sim_totals", totals={"/".join(k): [t.count, str(t.usd)] for k, t in sim.ledger.totals().items()})

    run_service("exchange-sim", settings, body, drain_timeout=5.0)


if __name__ == "__main__":
    main()
