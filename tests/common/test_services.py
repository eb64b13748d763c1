"""Every service process starts, answers /metrics and /health, and exits 0 on SIGTERM within 10 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.waiting import free_port, scaled

SERVICES = ["liq_ingest_binance", "liq_ingest_bybit", "liq_detector", "liq_persister", "liq_alerter"]


def _wait_http(url: str, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + scaled(timeout)
    while True:
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("module", SERVICES)
def test_service_serves_metrics_and_health_and_stops_cleanly(module: str, redis_url: str, streams, pg_url) -> None:
    """Start the service, scrape it, send SIGTERM: exit status 0 within 10 seconds."""
    port = free_port()
    env = {
        **os.environ,
        **streams.env(),
        "REDIS_URL": redis_url,
        "DATABASE_URL": pg_url,
        "METRICS_PORT": str(port),
        "LOG_FORMAT": "json",
        # Point ingestors at a closed port: they must still start, report themselves unhealthy and stop cleanly.
        "BINANCE_USDM_WS_URL": f"ws://127.0.0.1:{free_port()}/market/stream?streams=!forceOrder@arr",
        "BINANCE_COINM_WS_URL": f"ws://127.0.0.1:{free_port()}/stream?streams=!forceOrder@arr",
        "BINANCE_USDM_REST_URL": f"http://127.0.0.1:{free_port()}",
        "BINANCE_COINM_REST_URL": f"http://127.0.0.1:{free_port()}",
        "BYBIT_LINEAR_WS_URL": f"ws://127.0.0.1:{free_port()}/v5/public/linear",
        "BYBIT_INVERSE_WS_URL": f"ws://127.0.0.1:{free_port()}/v5/public/inverse",
        "BYBIT_REST_URL": f"http://127.0.0.1:{free_port()}",
    }
    proc = subprocess.Popen([sys.executable, "-m", module], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        metrics = _wait_http(f"http://127.0.0.1:{port}/metrics", timeout=30)
        assert metrics.status_code == 200
        assert "python_info" in metrics.text
        health = _wait_http(f"http://127.0.0.1:{port}/health", timeout=5)
        assert health.status_code in (200, 503)
        assert health.json()["status"] in ("ok", "degraded")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=scaled(10))
        assert status == 0, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() - started < scaled(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
