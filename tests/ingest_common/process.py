"""Running an ingest service as a subprocess (``python -m ...``), as it runs in production: starting it
against the exchange simulator and the test's Redis streams, and draining it with SIGTERM.

What is exchange-specific (the module, its URLs, how to tell it is subscribed, what the exchange sends)
stays in each suite; this module only starts and stops the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tests.conftest import Streams
from tests.waiting import scaled


def service_env(streams: Streams, redis_url: str, settings: dict[str, str]) -> dict[str, str]:
    """The environment pointing a service at ``streams`` on ``redis_url``, plus ``settings`` given by
    field name (each is read from the upper-case variable of the same name)."""
    return {**streams.env(), "REDIS_URL": redis_url, **{name.upper(): value for name, value in settings.items()}}


async def start(module: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start ``python -m module`` with the test environment plus ``env`` (JSON logs on stdout)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "BYBIT_"))}
    base.update({"METRICS_PORT": "0", "LOG_FORMAT": "json", "LOG_LEVEL": "info", **env})
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, env=base, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    """SIGTERM the service and wait for it; returns (exit status, stdout)."""
    proc.terminate()
    stdout, _ = await asyncio.wait_for(proc.communicate(), timeout=scaled(25))
    assert proc.returncode is not None
    return proc.returncode, stdout.decode()


async def config_error(module: str, env: dict[str, str]) -> str:
    """Run the service with a bad ``env``: it must exit by itself with status 2 (before connecting anywhere)
    and name every variable of ``env`` on stderr. Returns its stderr."""
    proc = await start(module, env)
    _, raw = await asyncio.wait_for(proc.communicate(), timeout=scaled(30))
    stderr = raw.decode()
    assert proc.returncode == 2, f"{module} exited with {proc.returncode}, not 2; stderr: {stderr}"
    unnamed = [name for name in env if name not in stderr]
    assert not unnamed, f"{module} did not name {unnamed} on stderr: {stderr}"
    return stderr


@dataclass
class Service:
    """A service process started by :func:`serving`; ``status`` and ``stdout`` are set once it has exited."""

    proc: asyncio.subprocess.Process
    status: int | None = None
    stdout: str = ""

    @property
    def drained(self) -> bool:
        """It exited with status 0 after logging ``service_stopped``: the whole graceful shutdown ran."""
        return self.status == 0 and '"event":"service_stopped"' in self.stdout


@contextlib.asynccontextmanager
async def serving(module: str, streams: Streams, redis_url: str, settings: dict[str, str]) -> AsyncIterator[Service]:
    """Run ``python -m module`` against ``streams`` on ``redis_url`` with ``settings`` (by field name, as
    :func:`service_env` passes them) for the body of the ``async with``; on leaving it (a failure too),
    SIGTERM the process and wait for it to drain and exit."""
    service = Service(await start(module, service_env(streams, redis_url, settings)))
    try:
        yield service
    finally:
        service.status, service.stdout = await stop(service.proc)
