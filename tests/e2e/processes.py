"""Services as real child processes for end-to-end tests: start, health, kill -9, restart, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.waiting import free_port, scaled


class ServiceProcess:
    """One ``python -m liq_<name>`` child with its own metrics port and log file.

    Args:
        name: Service name as in ``services/`` (``ingest-binance``, ``detector``, ...), or another name for a
            second process of one service (then give ``service``).
        env: Extra environment (REDIS_URL, DATABASE_URL, stream names, exchange URLs, ...).
        logdir: Where ``<name>.log`` collects the child's stdout and stderr across restarts.
        service: The service it runs, when ``name`` is not one (e.g. ``detector`` for a shard ``detector-1``).
    """

    def __init__(self, name: str, env: dict[str, str], logdir: Path, service: str | None = None) -> None:
        self.name = name
        self.module = f"liq_{(service or name).replace('-', '_')}"
        self.port = free_port()
        self.env = {**os.environ, **env, "METRICS_PORT": str(self.port), "LOG_FORMAT": "json"}
        self.log_path = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process and wait until its /metrics answers."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.starts += 1
        deadline = time.monotonic() + scaled(30)
        while True:
            try:
                if httpx.get(f"{self.base_url}/metrics", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log_path}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not serve /metrics in time:\n{self.tail()}")
            time.sleep(0.05)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        text = httpx.get(f"{self.base_url}/metrics", timeout=2).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            metric, _, label_text = head.partition("{")
            if metric != name:
                continue
            if labels and not all(f'{k}="{v}"' in label_text for k, v in labels.items()):
                continue
            total += float(value)
        return total

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing flushed, nothing acknowledged."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit status (kills after ``timeout``)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return int(self.proc.returncode)

    def tail(self, lines: int = 40) -> str:
        """The end of this service's log, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
