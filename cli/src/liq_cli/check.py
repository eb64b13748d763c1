"""``liq check``: is the pipeline healthy? One line per check, one clear line per problem.

Checks, in order: Redis answers; PostgreSQL answers; the schema is at the persister's newest migration;
each stream's length; each consumer group's lag (entries not yet delivered) and pending (delivered, not
acknowledged); dead letters; the age of the newest stored liquidation per exchange; feed health (each
connection slot connected, last data age and outages per feed, :mod:`liq_cli.feeds`). A problem is
anything over its threshold (flags), or a check that could not run. The exit status is the number of
problems, capped at 1 (0 when all is well).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from liq_cli import database
from liq_cli.database import Conn
from liq_cli.feeds import feed_health
from liq_cli.money import age
from liq_cli.settings import CliSettings
from liq_common.streams import REDIS_DOWN, connect_redis
from liq_persister.schema import latest_version

GROUPS = {"events": ("detector", "persister"), "cascades": ("persister", "alerter")}
"""Consumer groups expected on each stream (README, Streams)."""


@dataclass(frozen=True)
class Thresholds:
    """Limits above which a figure is a problem.

    Attributes:
        max_lag: Entries of a stream not yet delivered to a group.
        max_pending: Entries delivered to a group and not acknowledged.
        max_dead: Entries in the dead-letter stream.
        max_event_age: Age of an exchange's newest stored liquidation.
        exchanges: Exchanges expected to have liquidations.
    """

    max_lag: int = 10_000
    max_pending: int = 10_000
    max_dead: int = 0
    max_event_age: timedelta = timedelta(minutes=15)
    exchanges: tuple[str, ...] = ("binance", "bybit")


@dataclass
class Report:
    """Lines of the check (``ok`` / ``PROBLEM``) in order; ``problems`` counts the latter."""

    lines: list[tuple[bool, str, str]] = field(default_factory=list)

    def ok(self, what: str, detail: str) -> None:
        """Record a passed check."""
        self.lines.append((True, what, detail))

    def problem(self, what: str, detail: str) -> None:
        """Record a problem: one self-contained line saying what is wrong."""
        self.lines.append((False, what, detail))

    @property
    def problems(self) -> list[str]:
        """The problem lines."""
        return [f"{what}: {detail}" for ok, what, detail in self.lines if not ok]


def mask(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def run(settings: CliSettings, limits: Thresholds) -> Report:
    """Run every check against ``settings``' Redis and database."""
    report = Report()
    client = connect_redis(settings.redis_url, socket_timeout=5.0)
    try:
        started = time.perf_counter()
        await client.ping()
    except (RedisError, *REDIS_DOWN) as exc:
        report.problem("redis", f"unreachable at {mask(settings.redis_url)}: {exc}")
    else:
        report.ok("redis", f"{mask(settings.redis_url)} answered in {(time.perf_counter() - started) * 1000:.1f} ms")
        try:
            await _streams(client, settings, limits, report)
        except (RedisError, *REDIS_DOWN) as exc:
            report.problem("redis", f"failed during the stream checks: {exc}")
    finally:
        await client.aclose()
    url = settings.database_url.get()
    try:
        conn = await database.connect(url)
    except database.Unreachable as exc:
        report.problem("database", f"{exc} ({mask(url)})")
        return report
    try:
        report.ok("database", f"{mask(url)} answered")
        if await _schema(conn, report):
            await _freshness(conn, limits, report)
            await feed_health(conn, report)
    except database.Unreachable as exc:
        report.problem("database", str(exc))
    finally:
        await conn.close()
    return report


async def _streams(client: aioredis.Redis, settings: CliSettings, limits: Thresholds, report: Report) -> None:
    names = {"events": settings.events_stream, "cascades": settings.cascades_stream}
    for kind, stream in names.items():
        length = int(await client.xlen(stream))
        report.ok("stream", f"{stream}: {length:,} entries")
        groups = await _groups(client, stream)
        for service in GROUPS[kind]:
            present = [name for name in groups if name == service or _shard_of(service, name) is not None]
            if not present:
                report.problem("group", f"{stream}: consumer group {service!r} is missing (is liq-{service} running?)")
            for missing in _missing_shards(service, present):
                report.problem("group", f"{stream}: consumer group {missing!r} is missing (a shard is not running)")
            for group in sorted(present):
                await _group(client, stream, group, groups[group], limits, report)
    dead = int(await client.xlen(settings.dead_stream))
    if dead > limits.max_dead:
        last = await client.xrevrange(settings.dead_stream, count=1)
        fields = last[0][1] if last and last[0][1] else {}
        raw = fields.get(b"reason", b"?")
        reason = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        report.problem("dead", f"{settings.dead_stream}: {dead:,} dead letters (latest: {reason})")
    else:
        report.ok("dead", f"{settings.dead_stream}: {dead:,} dead letters")


async def _lag(client: aioredis.Redis, stream: str, info: dict[str, Any], limit: int) -> tuple[int, bool]:
    """Entries of ``stream`` not yet delivered to the group: (count, True if counting stopped at ``limit`` + 1).

    Redis reports ``lag`` itself when it can; it answers nil after some trims and deletions (and Redis < 7
    has no lag), so then the entries after the group's last-delivered id are counted, up to ``limit`` + 1.
    """
    lag = info.get("lag")
    if lag is not None:
        return int(lag), False
    last = info.get("last-delivered-id") or b"0-0"
    start = b"(" + (last if isinstance(last, bytes) else str(last).encode())
    entries = await client.xrange(stream, min=start, max="+", count=limit + 1) or []
    return len(entries), len(entries) > limit


_SHARD = re.compile(r"(\d+)of(\d+)")
"""Suffix of a sharded detector's group after ``detector.``: ``{index}of{count}`` (liq_detector.shard)."""


def _shard_of(service: str, name: str) -> tuple[int, int] | None:
    """(index, count) when ``name`` is the group of one shard of ``service`` (``detector.1of2``), else None."""
    prefix = service + "."
    m = _SHARD.fullmatch(name[len(prefix) :]) if name.startswith(prefix) else None
    return (int(m[1]), int(m[2])) if m else None


def _missing_shards(service: str, present: list[str]) -> list[str]:
    """Groups of a shard layout some of whose shards have none, e.g. ``detector.1of2`` beside ``detector.0of2``."""
    layouts: dict[int, set[int]] = {}
    for name in present:
        if (shard := _shard_of(service, name)) is not None:
            layouts.setdefault(shard[1], set()).add(shard[0])
    return [f"{service}.{i}of{n}" for n, found in sorted(layouts.items()) for i in range(n) if i not in found]


async def _group(
    client: aioredis.Redis, stream: str, group: str, info: dict[str, Any], limits: Thresholds, report: Report
) -> None:
    """One group's lag and pending count against the limits."""
    pending = int(info.get("pending") or 0)
    lag, bound = await _lag(client, stream, info, limits.max_lag)
    lag_text = f"{lag:,}" if not bound else f"more than {limits.max_lag:,}"
    detail = f"{stream} / {group}: lag {lag_text}, pending {pending:,}"
    if lag > limits.max_lag:
        report.problem("group", f"{detail}: lag above {limits.max_lag:,}")
    elif pending > limits.max_pending:
        report.problem("group", f"{detail}: pending above {limits.max_pending:,}")
    else:
        report.ok("group", detail)


async def _groups(client: aioredis.Redis, stream: str) -> dict[str, dict[str, Any]]:
    """XINFO GROUPS of ``stream`` by group name ({} when the stream does not exist)."""
    try:
        infos = await client.xinfo_groups(stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return {}
        raise
    out: dict[str, dict[str, Any]] = {}
    for info in infos:
        name = info.get("name")
        out[name.decode() if isinstance(name, bytes) else str(name)] = info
    return out


_SCHEMA = b"SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0 ELSE 1 END"
_VERSION = b"SELECT coalesce(max(version), 0) FROM schema_migrations"
_NEWEST = b"""
SELECT exchange, max(ts) FROM liquidations WHERE ts >= %s GROUP BY exchange
"""


async def _schema(conn: Conn, report: Report) -> bool:
    """Check the schema version; False when there is no schema at all (nothing else to read)."""
    try:
        row = await (await conn.execute(_SCHEMA)).fetchone()
        version = 0
        if row and row[0]:
            row = await (await conn.execute(_VERSION)).fetchone()
            version = int(str(row[0])) if row else 0
    except psycopg.Error as exc:
        raise database.Unreachable(f"schema check failed: {database.first_line(exc)}") from exc
    latest = latest_version()
    if version < latest:
        report.problem("schema", f"at version {version}, the persister needs {latest}: run `liq-persister migrate`")
    else:
        report.ok("schema", f"version {version} (persister's latest: {latest})")
    return version > 0


async def _freshness(conn: Conn, limits: Thresholds, report: Report) -> None:
    now = datetime.now(UTC)
    horizon = now - max(limits.max_event_age * 4, timedelta(days=1))
    try:
        rows = await (await conn.execute(_NEWEST, (horizon,))).fetchall()
    except psycopg.Error as exc:
        report.problem("events", f"cannot read liquidations: {database.first_line(exc)}")
        return
    newest = {str(exchange): ts for exchange, ts in rows if isinstance(ts, datetime)}
    for exchange in sorted(set(limits.exchanges) | set(newest)):
        ts = newest.get(exchange)
        if ts is None:
            report.problem("events", f"{exchange}: no liquidation stored since {horizon:%Y-%m-%d %H:%M} UTC")
            continue
        seconds = (now - ts).total_seconds()
        detail = f"{exchange}: newest liquidation {age(seconds)} ago"
        if seconds > limits.max_event_age.total_seconds():
            report.problem("events", f"{detail}, older than {age(limits.max_event_age.total_seconds())}")
        else:
            report.ok("events", detail)
