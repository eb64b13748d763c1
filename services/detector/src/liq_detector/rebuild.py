"""Restart: rebuild the engine and dashboard from Redis before consuming.

1. Load the baseline history saved in ``{dash_prefix}baselines`` and this hour's price levels.
2. Read back the latest published state of each recent cascade from ``cascades_stream``.
3. Replay, without publishing, the events this group already received (up to its last delivered id),
   from the start of the oldest open cascade's window (at most ``rebuild_max_ms`` back).
4. Reconcile (:func:`liq_detector.recovery.reconcile`): what the replay produced beyond the published
   states is to be published; nothing up to them is published again.

Entries still pending are redelivered afterwards and ignored as duplicates by the engine. A shard
(:mod:`.shard`) restores only its own assets, and the event times of the others move its watermark
during the replay as they did live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from liq_common.codec import CASCADES, LIQUIDATIONS, EntryDecodeError
from liq_common.events import Cascade, Liquidation
from liq_detector import metrics
from liq_detector.dashboard import Dashboard
from liq_detector.engine import Engine
from liq_detector.settings import Settings
from liq_detector.shard import Shard, layout_of

READ_CHUNK = 5_000
Entries = list[tuple[bytes, dict[bytes, bytes]]]


class _Saved(msgspec.Struct):
    first: int
    through: int
    minutes: dict[int, list[float]]


_saved_decoder = msgspec.json.Decoder(_Saved)


async def _xrevrange(client: aioredis.Redis, stream: str, top: bytes | str, count: int) -> Entries:
    """XREVRANGE from ``top`` down, typed for a bytes-reply client."""
    return cast(Entries, await client.xrevrange(stream, max=top, min="-", count=count))


@dataclass
class Rebuilt:
    """What a rebuild found: states to publish now, events replayed, published cascades read back."""

    todo: list[Cascade]
    replayed: int
    published: int


async def rebuild(
    client: aioredis.Redis, settings: Settings, shard: Shard, engine: Engine, dashboard: Dashboard
) -> Rebuilt:
    """Restore ``engine`` and ``dashboard`` for this group's position in the events stream (see module)."""
    s = settings
    last_id = await _last_delivered(client, s)
    if last_id is None:
        return Rebuilt([], 0, 0)
    last_ts = await _newest_time(client, s.events_stream, last_id)
    if last_ts is None:
        return Rebuilt([], 0, 0)
    oldest_allowed = last_ts - s.rebuild_max_ms
    published = await _published(client, s.cascades_stream, oldest_allowed, shard)
    saved_all = cast(dict[bytes, bytes], await client.hgetall(dashboard.key("baselines")))
    for raw_base, raw in saved_all.items():
        if shard.owns(base := raw_base.decode()):
            saved = _saved_decoder.decode(raw)
            engine.restore_baseline(base, saved.first, saved.through, saved.minutes)
    hour = last_ts - last_ts % 3_600_000
    levels = cast(dict[bytes, bytes], await client.hgetall(dashboard.key("levels", hour)))
    dashboard.restore_levels(hour, {k: v for k, v in levels.items() if shard.owns(k.decode())})
    starts = [p.window_start for p in published.values() if p.status != "close"]
    # Replay far enough back to rebuild the baselines too: an asset whose history was not saved yet (a
    # detector younger than its first save, or a new asset) would otherwise restart cold, unable to open
    # a cascade that is under way. Minutes restored from Redis are frozen, so replaying them again never
    # counts an event twice.
    warm = last_ts - s.warmup_minutes * 60_000
    start = min([last_ts, warm, *starts]) - s.window_ms - s.lateness_ms
    start = max(start - start % 60_000, oldest_allowed)
    events = await _read_back(client, s, last_id, start)
    replayed: list[Cascade] = []
    for i in range(0, len(events), READ_CHUNK):
        own, elsewhere = shard.mine(events[i : i + READ_CHUNK])
        engine.note_time(elsewhere)
        replayed.extend(engine.ingest(own))
        dashboard.add(engine.accepted, write=False)
    engine.baseline_updates()  # already saved before the restart
    metrics.REPLAYED.inc(len(events))
    return Rebuilt(engine.reconcile(replayed, published), len(events), len(published))


async def inherit_position(client: aioredis.Redis, s: Settings) -> bytes | None:
    """Create this process's group, if missing, where the detector groups of another layout stood.

    Each shard layout has its own groups (``detector``; ``detector.0of2`` and ``detector.1of2``...), so
    changing ``SHARD_COUNT`` starts new ones. Starting them at ``0`` would process the whole stream again
    and publish its cascades twice; a new group starts instead at the newest ``last-delivered-id`` of the
    other layouts' groups, so :func:`rebuild` replays up to there silently and republishes what a slower
    old group had not published yet (as far back as the replay reaches: ``WARMUP_MINUTES`` plus a window
    before that position, or the oldest open cascade, at most ``REBUILD_MAX_MS``). Groups of this layout
    (the other shards, starting at the same time) are not inherited from. Returns the id the group was
    created at, or None when it existed or there is no other layout (the runner then creates it at ``0``).
    """
    try:
        groups = await client.xinfo_groups(s.events_stream)
    except ResponseError:
        return None  # no stream yet
    names = {_text(g.get("name")): g for g in groups}
    if s.consumer_group in names:
        return None
    ids = [
        _text(g.get("last-delivered-id"))
        for name, g in names.items()
        if layout_of(s.group, name) not in (None, s.shard_count)
    ]
    ids = [i for i in ids if i and i != "0-0"]
    if not ids:
        return None
    start = max(ids, key=lambda i: tuple(int(x) for x in i.split("-"))).encode()
    try:
        await client.xgroup_create(s.events_stream, s.consumer_group, id=start)
    except ResponseError as exc:
        if not str(exc).startswith("BUSYGROUP"):  # another process of the same group just created it
            raise
        return None
    return start


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


async def _newest_time(client: aioredis.Redis, stream: str, last_id: bytes) -> int | None:
    """Event time (ms) of the newest decodable entry up to ``last_id``; None if none decodes. The last
    delivered entry itself may be one the runner dead-lettered: failing on it would stop every restart at
    the same place. Usually the first entry read answers, so entries are read a few at a time."""
    top: bytes | str = last_id
    while entries := await _xrevrange(client, stream, top, 16):
        for _, fields in entries:
            try:
                return LIQUIDATIONS.decode(fields).ts
            except EntryDecodeError:
                continue
        top = "(" + entries[-1][0].decode()
    return None


async def _last_delivered(client: aioredis.Redis, s: Settings) -> bytes | None:
    try:
        groups = await client.xinfo_groups(s.events_stream)
    except ResponseError:
        return None  # no stream yet
    for info in groups:
        name = info.get("name")
        if name in (s.consumer_group, s.consumer_group.encode()):
            last = info.get("last-delivered-id")
            if isinstance(last, bytes) and last != b"0-0":
                return last
    return None


async def _published(client: aioredis.Redis, stream: str, oldest_allowed: int, shard: Shard) -> dict[str, Cascade]:
    """Latest published state per cascade id of this shard's assets, for cascades that ended after
    ``oldest_allowed`` (another shard's cascades are that shard's to reconcile)."""
    latest: dict[str, Cascade] = {}
    top: bytes | str = "+"
    while True:
        entries = await _xrevrange(client, stream, top, 1000)
        if not entries:
            return latest
        older = 0
        for _, fields in entries:
            try:
                state = CASCADES.decode(fields)
            except EntryDecodeError:
                continue
            if state.window_end < oldest_allowed:
                older += 1
            if shard.owns(state.base):
                latest.setdefault(state.cascade_id, state)
        if older == len(entries):
            return {k: v for k, v in latest.items() if v.window_end >= oldest_allowed}
        top = "(" + entries[-1][0].decode()


async def _read_back(client: aioredis.Redis, s: Settings, last_id: bytes, start_ts: int) -> list[Liquidation]:
    """Events up to ``last_id`` (inclusive) back to event time ``start_ts``, oldest first."""
    out: list[Liquidation] = []
    top: bytes | str = last_id
    while True:
        entries = await _xrevrange(client, s.events_stream, top, READ_CHUNK)
        if not entries:
            break
        newest_in_chunk = -1
        for _, fields in entries:
            try:
                ev = LIQUIDATIONS.decode(fields)
            except EntryDecodeError:
                continue  # the runner dead-lettered it the first time
            newest_in_chunk = max(newest_in_chunk, ev.ts)
            if ev.ts >= start_ts:
                out.append(ev)
        if newest_in_chunk < start_ts - s.lateness_ms:
            break
        top = "(" + entries[-1][0].decode()
    out.reverse()
    return out
