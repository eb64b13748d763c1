"""Entry point of the ``liq`` command: ``liq {top,stats,chart,check,replay} ...``.

Connections come from the services' environment variables (``REDIS_URL``, ``DATABASE_URL``, stream
names, ``DASH_PREFIX``); the flags of the same names override them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from liq_cli import database
from liq_cli.durations import parse_duration
from liq_cli.settings import CliSettings, override
from liq_common.settings import load_or_exit

# Each subcommand imports what it needs when it runs: matplotlib alone takes seconds to import, and
# `liq check` in a cron job or `liq top` should not pay for it.

REPLAY_EPILOG = """\
FILE holds one normalised liquidation per line, as JSON (the `data` field of liq:events entries);
blank lines and lines starting with # are skipped.

Raw exchange recordings (one liquidation per line as the exchange reported it: exchange, market,
symbol, side, price, size, ts) are not replayed here: the exchange simulator serves them to the
ingestors as real Binance/Bybit websocket frames, exchange rules included (e.g. Binance's one
liquidation per symbol per second):
  liq-exchange-sim --scenario RECORDING.jsonl --speed N --rebase-time
then point the ingestors at the LISTEN URLs it prints.
"""


def _connections(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connections (default: the services' environment variables)")
    group.add_argument("--redis-url", help="Redis URL (REDIS_URL)")
    group.add_argument("--database-url", help="PostgreSQL URL (DATABASE_URL)")
    group.add_argument("--events-stream", help="events stream (EVENTS_STREAM)")
    group.add_argument("--cascades-stream", help="cascades stream (CASCADES_STREAM)")
    group.add_argument("--dead-stream", help="dead-letter stream (DEAD_STREAM)")
    group.add_argument("--dash-prefix", help="detector dashboard key prefix (DASH_PREFIX)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="liq", description="Liquidations: live dashboard, stats, charts, checks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{top,stats,chart,check,replay}")

    p = sub.add_parser("top", help="live dashboard from the detector's Redis state (q or Ctrl-C quits)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    _connections(p)

    p = sub.add_parser("stats", help="totals of a time range from the database")
    p.add_argument("--since", type=parse_duration, default=parse_duration("24h"), help="e.g. 90m, 24h, 7d")
    p.add_argument("--asset", help="one base asset, e.g. BTC (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout (USD as exact decimal strings)")
    _connections(p)

    p = sub.add_parser("chart", help="liquidations by side over time (or --heatmap by price), PNG or terminal")
    p.add_argument("--asset", required=True, help="base asset, e.g. BTC")
    p.add_argument("--since", type=parse_duration, default=parse_duration("7d"), help="default 7d")
    p.add_argument("--out", type=Path, help="write a PNG here instead of drawing in the terminal")
    p.add_argument("--heatmap", action="store_true", help="USD liquidated per price bucket over time")
    p.add_argument("--width", type=int, default=1200, help="PNG width in pixels (default 1200)")
    p.add_argument("--height", type=int, default=600, help="PNG height in pixels (default 600)")
    _connections(p)

    p = sub.add_parser("check", help="is the pipeline healthy? exit 1 with one line per problem")
    p.add_argument("--max-lag", type=int, default=10_000, help="entries a group may be behind (default 10000)")
    p.add_argument("--max-pending", type=int, default=10_000, help="unacknowledged entries (default 10000)")
    p.add_argument("--max-dead", type=int, default=0, help="dead letters tolerated (default 0)")
    p.add_argument(
        "--max-event-age",
        type=parse_duration,
        default=parse_duration("15m"),
        help="age of an exchange's newest stored liquidation (default 15m)",
    )
    p.add_argument("--exchanges", default="binance,bybit", help="exchanges expected to have data")
    p.add_argument("--quiet", action="store_true", help="print only the problems")
    _connections(p)

    p = sub.add_parser(
        "replay",
        help="publish a JSON-lines file of normalised events to the events stream",
        epilog=REPLAY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--speed", type=float, default=1.0, help="pacing factor: 1 original pace, 100 faster, 0 no pacing")
    p.add_argument("--rebase-time", action="store_true", help="shift event times so the first event is now")
    _connections(p)
    return parser


def settings_for(args: argparse.Namespace) -> CliSettings:
    """Environment settings with the connection flags applied."""
    base = load_or_exit(CliSettings, os.environ)
    return override(
        base,
        redis_url=args.redis_url,
        database_url=args.database_url,
        events_stream=args.events_stream,
        cascades_stream=args.cascades_stream,
        dead_stream=args.dead_stream,
        dash_prefix=args.dash_prefix,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the subcommand; exits with its status."""
    args = build_parser().parse_args(argv)
    settings = settings_for(args)
    commands = {"top": _top, "stats": _stats, "chart": _chart, "check": _check, "replay": _replay}
    try:
        status = asyncio.run(commands[args.command](args, settings))
    except database.Unreachable as exc:
        sys.stderr.write(f"liq {args.command}: {exc}\n")
        status = 1
    except KeyboardInterrupt:
        status = 130
    raise SystemExit(status)


async def _top(args: argparse.Namespace, settings: CliSettings) -> int:
    from liq_cli import top

    return await top.run(settings.redis_url, settings.dash_prefix, interval=args.interval)


async def _stats(args: argparse.Namespace, settings: CliSettings) -> int:
    from rich.console import Console

    from liq_cli import stats

    async with await database.connect(settings.database_url.get()) as conn:
        result = await stats.compute(conn, args.since, args.asset)
    if args.json:
        sys.stdout.buffer.write(stats.to_json(result) + b"\n")
    else:
        stats.render(result, Console())
    return 0


async def _chart(args: argparse.Namespace, settings: CliSettings) -> int:
    from liq_cli import chart_data

    async with await database.connect(settings.database_url.get()) as conn:
        data = await chart_data.load(conn, args.asset, args.since, heatmap=args.heatmap)
    if not data.events and not data.cascades:
        sys.stderr.write(f"liq chart: no liquidations of {data.asset} since {data.since:%Y-%m-%d %H:%M} UTC\n")
        return 1
    from liq_cli import chart  # matplotlib: only once there is something to draw

    if args.out is not None:
        chart.to_png(data, args.out, heatmap=args.heatmap, width=args.width, height=args.height)
        sys.stderr.write(f"wrote {args.out} ({args.width}x{args.height} px, {data.events:,} events)\n")
    else:
        size = shutil.get_terminal_size((120, 30))
        colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        text = chart.to_terminal(data, heatmap=args.heatmap, columns=size.columns, rows=size.lines - 2, colour=colour)
        sys.stdout.write(text)
        sys.stdout.write("\n")
        for mark in data.cascades:
            sys.stdout.write(f"cascade {mark.start:%Y-%m-%d %H:%M:%S} UTC  {mark.tier:<8} score {mark.score:.2f}\n")
    return 0


async def _check(args: argparse.Namespace, settings: CliSettings) -> int:
    from rich.console import Console

    from liq_cli import check

    limits = check.Thresholds(
        max_lag=args.max_lag,
        max_pending=args.max_pending,
        max_dead=args.max_dead,
        max_event_age=args.max_event_age,
        exchanges=tuple(e.strip() for e in args.exchanges.split(",") if e.strip()),
    )
    report = await check.run(settings, limits)
    console = Console(highlight=False)
    for ok, what, detail in report.lines:
        if ok and not args.quiet:
            console.print(f"[green]ok[/]       {what:<9} {detail}", markup=True, soft_wrap=True)
        elif not ok:
            console.print(f"[bold red]PROBLEM[/]  {what:<9} {detail}", soft_wrap=True)
    if report.problems:
        console.print(f"{len(report.problems)} problem(s)", style="bold red")
        return 1
    console.print("all good", style="green")
    return 0


async def _replay(args: argparse.Namespace, settings: CliSettings) -> int:
    from liq_cli import replay
    from liq_common.streams import REDIS_DOWN, connect_redis

    if not args.file.is_file():
        sys.stderr.write(f"liq replay: no such file: {args.file}\n")
        return 2
    client = connect_redis(settings.redis_url, socket_timeout=10.0)
    try:
        outcome = await replay.replay(
            client,
            args.file,
            stream=settings.events_stream,
            maxlen=settings.stream_maxlen,
            speed=args.speed,
            rebase_time=args.rebase_time,
        )
    except REDIS_DOWN as exc:
        sys.stderr.write(f"liq replay: Redis unreachable at {settings.redis_url}: {exc}\n")
        return 1
    finally:
        await client.aclose()
    sys.stderr.write(
        f"published {outcome.published:,} events to {settings.events_stream}, {outcome.rejected:,} lines skipped\n"
    )
    return 1 if outcome.rejected and not outcome.published else 0


if __name__ == "__main__":
    main()
