"""Entry point of liq-detector: ``python -m liq_detector`` or the ``liq-detector`` script."""

from __future__ import annotations

import asyncio
import os

from liq_common.runtime import ServiceContext, run_service, watch_redis
from liq_common.settings import load_or_exit
from liq_common.streams import connect_redis
from liq_detector.service import Detector, tune_gc
from liq_detector.settings import Settings


def main() -> None:
    """Load settings from the environment and run the detector until SIGTERM/SIGINT."""
    settings = load_or_exit(Settings, os.environ)
    tune_gc()

    async def body(ctx: ServiceContext) -> None:
        client = connect_redis(settings.redis_url)
        try:
            watcher = asyncio.create_task(watch_redis(ctx, client), name="detector-redis-health")
            await Detector(settings, client).run(ctx.stop)
            await watcher
        finally:
            await client.aclose()

    run_service("detector", settings, body)


if __name__ == "__main__":
    main()
