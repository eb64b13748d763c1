"""`make demo`: the whole pipeline against the exchange simulator, then a summary, in under two minutes.

1. Starts embedded Redis and PostgreSQL in a fresh ``--data-dir`` (unless ``REDIS_URL`` / ``DATABASE_URL``
   are set; then the summary only counts this run's rows).
2. Starts ``liq-exchange-sim`` playing a seeded synthetic market (background liquidations, cascade
   episodes on Binance and Bybit, two-sided chop) that waits until both ingestors have subscribed.
3. Starts the five services pointed at the simulator; the alerter prints to the console (or posts to
   Discord/Telegram when ``DESTINATIONS`` is set).
4. When the scenario ends, waits until the persister and detector have drained the streams, prints the
   summary (events and USD per exchange and side, next to what the simulator delivered; cascades with
   tiers), stops everything and exits 0. Exit 1 if the stored events differ from the delivered ones.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import say, start_postgres, start_redis, start_services, stop_services

FEEDS = "binance_usdm,binance_coinm,bybit_linear,bybit_inverse"


class SimProcess:
    """The simulator as a child process; collects its LISTEN urls, the end marker and its delivered totals."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.urls: dict[str, str] = {}
        self.totals: dict[str, list[Any]] = {}
        self.done = threading.Event()
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "liq_exchange_sim", *args],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("LISTEN "):
                _, name, url = line.split()
                self.urls[name] = url
                if len(self.urls) == 6:
                    self.ready.set()
            elif line.startswith("SCENARIO_DONE"):
                self.done.set()
            elif '"sim_totals"' in line:
                self.totals = msgspec.json.decode(line)["totals"]
        self.done.set()


def service_env(env: dict[str, str], urls: dict[str, str]) -> dict[str, str]:
    """Point the ingestors at the simulator (only the host differs from production)."""
    return {
        **env,
        "BINANCE_USDM_WS_URL": f"{urls['binance_usdm_ws']}/market/stream?streams=!forceOrder@arr",
        "BINANCE_COINM_WS_URL": f"{urls['binance_coinm_ws']}/stream?streams=!forceOrder@arr",
        "BINANCE_USDM_REST_URL": urls["binance_usdm_rest"],
        "BINANCE_COINM_REST_URL": urls["binance_coinm_rest"],
        "BYBIT_LINEAR_WS_URL": f"{urls['bybit_ws']}/v5/public/linear",
        "BYBIT_INVERSE_WS_URL": f"{urls['bybit_ws']}/v5/public/inverse",
        "BYBIT_REST_URL": urls["bybit_rest"],
    }


def drained(client: redis.Redis, env: dict[str, str]) -> bool:
    """True when every consumer group has read and acknowledged everything on both streams."""
    for stream in (env.get("EVENTS_STREAM", "liq:events"), env.get("CASCADES_STREAM", "liq:cascades")):
        try:
            groups = client.xinfo_groups(stream)
        except redis.ResponseError:
            return False
        for group in groups:
            if group.get("pending") or group.get("lag"):
                return False
    return True


def open_cascades(database_url: str, since_ms: int) -> int:
    """Cascades of this run not closed yet."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM cascades WHERE closed_at IS NULL AND emitted_ts >= to_timestamp(%s / 1000.0)",
            (since_ms,),
        ).fetchone()
    return int(row[0]) if row else 0


def summary(database_url: str, since_ms: int, sim_totals: dict[str, list[Any]]) -> bool:
    """Print what was stored next to what the simulator delivered; True when they are equal."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT exchange, market, side, count(*), sum(notional_usd), bool_or(throttled) FROM liquidations "
            "WHERE recv_ts >= to_timestamp(%s / 1000.0) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            (since_ms,),
        ).fetchall()
        cascades = conn.execute(
            "SELECT base, tier, status, count, usd, exchanges, lower_bound, score FROM cascades "
            "WHERE emitted_ts >= to_timestamp(%s / 1000.0) ORDER BY window_start",
            (since_ms,),
        ).fetchall()
    say("\n=== liquidations stored (and what the simulator delivered) ===")
    say(f"{'exchange':<9} {'market':<8} {'side':<6} {'events':>8} {'USD':>20}   {'delivered':>9} {'delivered USD':>20}")
    exact = True
    for exchange, market, side, count, usd, throttled in rows:
        sim_count, sim_usd = sim_totals.get(f"{exchange}/{market}/{side}", [0, "0"])
        same = count == sim_count and Decimal(usd) == Decimal(sim_usd)
        exact = exact and same
        prefix = "at least " if throttled else ""
        say(
            f"{exchange:<9} {market:<8} {side:<6} {count:>8,} {prefix + f'${usd:,.2f}':>20}   {sim_count:>9,} "
            f"{f'${Decimal(sim_usd):,.2f}':>20} {'ok' if same else 'MISMATCH'}"
        )
    missing = set(sim_totals) - {f"{r[0]}/{r[1]}/{r[2]}" for r in rows}
    for key in sorted(missing):
        exact = False
        say(f"{key:<25} nothing stored, simulator delivered {sim_totals[key][0]:,} MISMATCH")
    say("(Binance totals are lower bounds: it publishes at most one liquidation per symbol per second.)")
    say("\n=== cascades ===")
    if not cascades:
        say("none detected")
    for base, tier, status, count, usd, exchanges, lower_bound, score in cascades:
        amount = f"{'at least ' if lower_bound else ''}${usd:,.2f}"
        say(
            f"{base:<6} {tier:<9} score {score:4.2f}  {status:<6} {count:>6,} liquidations  {amount:>22}  "
            f"on {', '.join(exchanges)}"
        )
    return exact


def main() -> int:
    """Run the demo; returns the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--data-dir", default="data/demo", type=Path)
    parser.add_argument("--seed", default=7, type=int)
    parser.add_argument("--duration", default=600.0, type=float, help="market seconds (event time)")
    parser.add_argument("--speed", default=12.0, type=float, help="playback speed factor")
    parser.add_argument("--metrics-port", default=9201, type=int)
    parser.add_argument("--drain-timeout", default=45.0, type=float)
    args = parser.parse_args()

    started = time.monotonic()
    since_ms = int(time.time() * 1000)
    env = dict(os.environ)
    env.setdefault("DESTINATIONS", '[{"kind": "console", "name": "console", "min_tier": "medium"}]')
    env.setdefault("LOG_LEVEL", "warning")
    env.setdefault("IDLE_SPEED", str(args.speed))  # the detector lets quiet time pass as fast as the replay
    cleanup: list[Any] = []
    if "REDIS_URL" not in env or "DATABASE_URL" not in env:
        shutil.rmtree(args.data_dir, ignore_errors=True)
    if "REDIS_URL" not in env:
        env["REDIS_URL"], proc = start_redis(args.data_dir.resolve() / "redis")
        cleanup.append(lambda: (proc.terminate(), proc.wait(10)))
    if "DATABASE_URL" not in env:
        env["DATABASE_URL"], pg = start_postgres(args.data_dir.resolve() / "pg")
        cleanup.append(pg.cleanup)  # type: ignore[attr-defined]

    sim = SimProcess(
        [
            "--scenario",
            "synthetic",
            "--seed",
            str(args.seed),
            "--duration",
            str(args.duration),
            "--speed",
            str(args.speed),
            "--port",
            "0",
            "--exit-when-done",
            "--wait-feeds",
            FEEDS,
        ],
        {**env, "LOG_FORMAT": "json", "LOG_LEVEL": "info", "METRICS_PORT": "0"},
    )
    status = 1
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        if not sim.ready.wait(30):
            say("the simulator did not start")
            return 1
        say(f"simulator: seed {args.seed}, {args.duration:.0f} s of market at {args.speed:g}x; services starting")
        children = start_services(
            ["persister", "detector", "alerter", "ingest-binance", "ingest-bybit"],
            service_env(env, sim.urls),
            args.metrics_port,
        )
        sim.done.wait()
        say(f"scenario done after {time.monotonic() - started:.0f} s; draining the pipeline")
        # The simulator is closing: stop the ingestors now (they publish what they hold, then exit) rather
        # than let them retry connecting to it while the rest drains.
        stop_services({name: children[name] for name in ("ingest-binance", "ingest-bybit")}, grace=25.0)
        client = redis.Redis.from_url(env["REDIS_URL"])
        deadline = time.monotonic() + args.drain_timeout
        while not drained(client, env) and time.monotonic() < deadline:
            time.sleep(0.2)
        while open_cascades(env["DATABASE_URL"], since_ms) and time.monotonic() < deadline:
            time.sleep(0.2)  # the detector closes a cascade after its quiet period
        exact = summary(env["DATABASE_URL"], since_ms, sim.totals)
        status = 0 if exact else 1
        say(
            f"\ndemo finished in {time.monotonic() - started:.0f} s; stored events "
            f"{'match the simulator exactly' if exact else 'DIFFER from the simulator'}"
        )
    finally:
        if children:
            stop_services(children, grace=25.0)
        if sim.proc.poll() is None:
            sim.proc.terminate()
            sim.proc.wait(10)
        for step in cleanup:
            step()
    return status


if __name__ == "__main__":
    sys.exit(main())
