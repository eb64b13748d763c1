"""Running an ingest service as a subprocess (``python -m ...``), as it runs in production."""

from __future__ import annotations

import asyncio
import os
import sys

from tests.waiting import scaled


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
