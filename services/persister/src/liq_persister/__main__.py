"""Entry point of liq-persister: ``python -m liq_persister [migrate]`` or the ``liq-persister`` script.

Without arguments the service runs until SIGTERM/SIGINT (pending migrations are applied first unless
``MIGRATE_ON_START=false``). ``migrate`` applies pending migrations as ``MIGRATE_DATABASE_URL`` (default
``DATABASE_URL``) and exits: 0 when the schema is current, 1 on failure.
"""

from __future__ import annotations

import asyncio
import os
import sys

import psycopg
import redis.asyncio as aioredis

from liq_common.logs import configure_logging
from liq_common.runtime import ServiceContext, run_redis_service
from liq_common.settings import load_or_exit
from liq_persister import schema
from liq_persister.service import run
from liq_persister.settings import Settings

USAGE = "usage: liq-persister [migrate]\n"


def migrate_command(settings: Settings) -> int:
    """Apply pending migrations and print what ran; returns the exit status."""
    configure_logging("persister", settings.log_level, settings.log_format)
    try:
        done = asyncio.run(
            schema.migrate(settings.owner_url, timescaledb=settings.timescaledb, retention_days=settings.retention_days)
        )
    except psycopg.Error as exc:
        sys.stderr.write(f"migration failed: {type(exc).__name__}: {str(exc).strip()}\n")
        return 1
    for migration in done:
        print(f"applied {migration.version:04d} {migration.name}")
    print(f"schema at version {schema.latest_version()}")
    return 0


def main() -> None:
    """Parse the command line, load settings from the environment and run."""
    args = sys.argv[1:]
    if args not in ([], ["migrate"]):
        sys.stderr.write(USAGE)
        raise SystemExit(2)
    settings = load_or_exit(Settings, os.environ)
    if args == ["migrate"]:
        raise SystemExit(migrate_command(settings))

    async def body(ctx: ServiceContext, client: aioredis.Redis) -> None:
        await run(settings, ctx, client)

    run_redis_service("persister", settings, body)


if __name__ == "__main__":
    main()
