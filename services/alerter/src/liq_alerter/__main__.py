"""Entry point of liq-alerter: ``python -m liq_alerter`` or the ``liq-alerter`` script."""

from __future__ import annotations

import asyncio
import os
import sys

from liq_alerter.destinations import DestinationError, parse_destinations
from liq_alerter.service import Alerter
from liq_alerter.settings import Settings
from liq_common.runtime import ServiceContext, run_service, watch_redis
from liq_common.settings import load_or_exit
from liq_common.streams import connect_redis


def main() -> None:
    """Load settings from the environment and run the service until SIGTERM/SIGINT."""
    settings = load_or_exit(Settings, os.environ)
    try:
        destinations = parse_destinations(settings.destinations)
    except DestinationError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from exc

    async def body(ctx: ServiceContext) -> None:
        client = connect_redis(settings.redis_url)
        try:
            alerter = Alerter(settings, destinations, client, ctx.health)
            await asyncio.gather(watch_redis(ctx, client), alerter.run(ctx.stop))
        finally:
            await client.aclose()

    run_service("alerter", settings, body)


if __name__ == "__main__":
    main()
