"""Entry point of liq-detector: ``python -m liq_detector`` or the ``liq-detector`` script."""

from __future__ import annotations

import os

import redis.asyncio as aioredis

from liq_common.runtime import ServiceContext, run_redis_service
from liq_common.settings import load_or_exit
from liq_detector.service import Detector, tune_gc
from liq_detector.settings import Settings


def main() -> None:
    """Load settings from the environment and run the detector until SIGTERM/SIGINT."""
    settings = load_or_exit(Settings, os.environ)
    tune_gc()

    async def body(ctx: ServiceContext, client: aioredis.Redis) -> None:
        await Detector(settings, client).run(ctx.stop)

    run_redis_service("detector", settings, body)


if __name__ == "__main__":
    main()
