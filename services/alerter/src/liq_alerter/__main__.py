"""Entry point of liq-alerter: ``python -m liq_alerter`` or the ``liq-alerter`` script."""

from __future__ import annotations

import os

import redis.asyncio as aioredis

from liq_alerter.destinations import DestinationError, parse_destinations
from liq_alerter.service import Alerter
from liq_alerter.settings import Settings
from liq_common.runtime import ServiceContext, run_redis_service
from liq_common.settings import check_or_exit, load_or_exit


def main() -> None:
    """Load settings from the environment and run the service until SIGTERM/SIGINT."""
    settings = load_or_exit(Settings, os.environ)
    destinations = check_or_exit(lambda: parse_destinations(settings.destinations), DestinationError)

    async def body(ctx: ServiceContext, client: aioredis.Redis) -> None:
        await Alerter(settings, destinations, client, ctx.health).run(ctx.stop)

    run_redis_service("alerter", settings, body)


if __name__ == "__main__":
    main()
