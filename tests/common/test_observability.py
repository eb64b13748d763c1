"""The metrics/health endpoint of every service."""

from __future__ import annotations

import httpx

from liq_common.observability import Health, ObservabilityServer


async def test_health_is_200_when_all_checks_pass_and_503_otherwise() -> None:
    """/health reports each check; any failing one makes it 503 'degraded'."""
    health = Health()
    server = ObservabilityServer(health, "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            health.set("redis", True)
            ok = await client.get("/health")
            assert (ok.status_code, ok.json()["status"]) == (200, "ok")
            health.set("database", False, "connection refused")
            bad = await client.get("/health")
            assert bad.status_code == 503
            assert bad.json()["checks"]["database"] == {
                "ok": False,
                "detail": "connection refused",
                "since": bad.json()["checks"]["database"]["since"],
            }
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert "# TYPE" in metrics.text
            assert (await client.get("/nope")).status_code == 404
            assert (await client.post("/metrics")).status_code == 405
    finally:
        await server.close()
