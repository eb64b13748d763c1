"""The container health probe (deploy/docker/healthcheck.py) against a real service endpoint.

The endpoint is liq_common's own ObservabilityServer, as every service runs it; the probe runs as a
subprocess the way Docker runs it, with METRICS_PORT in its environment.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import pytest

from liq_common.observability import Health, ObservabilityServer
from tests.deploy import artifacts
from tests.waiting import free_port, scaled

PROBE = artifacts.DEPLOY / "docker" / "healthcheck.py"


@pytest.fixture
async def endpoint() -> AsyncIterator[ObservabilityServer]:
    """A live /health endpoint on a free port."""
    server = ObservabilityServer(Health(), "127.0.0.1", 0)
    await server.start()
    yield server
    await server.close()


async def _probe(port: int | None, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "METRICS_PORT"}
    if port is not None:
        env["METRICS_PORT"] = str(port)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROBE),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=scaled(20))
    assert proc.returncode is not None
    return proc.returncode, output.decode()


async def test_healthy_service_exits_0(endpoint: ObservabilityServer) -> None:
    """Every check passing: /health answers 200 and the probe exits 0 printing the report."""
    endpoint.health.set("redis", True)
    status, output = await _probe(endpoint.port)
    assert status == 0, output
    assert '"status":"ok"' in output


async def test_failing_check_exits_1(endpoint: ObservabilityServer) -> None:
    """One failing check (503) makes the container unhealthy; the detail shows in the output."""
    endpoint.health.set("redis", True)
    endpoint.health.set("database", False, "connection refused")
    status, output = await _probe(endpoint.port)
    assert status == 1
    assert "503" in output
    assert "connection refused" in output


async def test_nothing_listening_exits_1() -> None:
    """A service not (yet) serving is unhealthy, not an error of the probe (Docker reserves exit 2)."""
    status, output = await _probe(free_port())
    assert status == 1, output


async def test_port_argument_wins_and_missing_port_is_unhealthy(endpoint: ObservabilityServer) -> None:
    """The port may be given as argument; without any port the probe says so and exits 1."""
    status, _ = await _probe(None, str(endpoint.port))
    assert status == 0
    status, output = await _probe(None)
    assert status == 1
    assert "METRICS_PORT" in output
