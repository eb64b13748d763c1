"""`make run`'s launcher: embedded Redis and PostgreSQL, five services, clean Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.waiting import free_port, scaled

ROOT = Path(__file__).resolve().parents[2]


def test_stack_runs_five_services_on_embedded_servers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """Without REDIS_URL/DATABASE_URL it starts embedded servers; every service answers; SIGINT exits 0 < 10 s."""
    base = free_port()
    while any(_busy(base + i) for i in range(5)):
        base = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["LOG_FORMAT"] = "json"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy/local/stack.py"), "--data-dir", str(tmp_path), "--metrics-port", str(base)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for i in range(5):
            deadline = time.monotonic() + scaled(60)
            while True:
                try:
                    health = httpx.get(f"http://127.0.0.1:{base + i}/health", timeout=1)
                    metrics = httpx.get(f"http://127.0.0.1:{base + i}/metrics", timeout=1)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                    assert time.monotonic() < deadline, f"service {i} never answered"
                    time.sleep(0.1)
            assert health.status_code in (200, 503)
            assert metrics.status_code == 200
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=scaled(10))
        assert proc.returncode == 0, output
        assert time.monotonic() - started < scaled(10)
        assert "embedded Redis" in output
        assert "embedded PostgreSQL" in output
        assert (tmp_path / "redis" / "appendonlydir").exists() or (tmp_path / "redis" / "appendonly.aof").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _busy(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
