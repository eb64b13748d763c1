"""Sharding the detector by base asset: N processes, each owning the assets that hash to it.

A cascade is a per-asset state (its window, baseline and open cascade never look at another asset), so
assets can be split between processes with no shared state. Every shard reads the whole events stream
with its own consumer group (``{GROUP}.{index}of{count}``, :func:`group_name`) and fully decodes only the
entries of its own assets:
for the others it reads just ``base`` and ``ts`` (a few hundred ns instead of ~2 us with the Decimals),
and their event times still move its watermark, so each shard evaluates ticks exactly when a single
detector would. Ownership is ``crc32(base) % count``: stable across processes, restarts and Python
versions (``hash()`` is salted per process).

An entry nobody can route (not a liquidation, broken JSON) is dead-lettered by shard 0 alone, so one bad
entry gives one dead letter; an entry that routes but does not fully decode is dead-lettered by its owner.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from typing import Annotated

import msgspec

from liq_common.codec import FIELD, LIQUIDATIONS, EntryDecodeError
from liq_common.events import Exchange, Liquidation, Market, PositionSide

NO_TIME = -(2**62)
"""Below every event time: :func:`split`'s answer when no entry was routed."""


def group_name(group: str, index: int, count: int) -> str:
    """The events-stream group of shard ``index`` of ``count``: ``GROUP`` unsharded, else ``GROUP.{index}of{count}``.

    The count is part of the name so that another layout (2 shards -> 3) starts new groups rather than
    resuming ones whose assets were different (see :func:`liq_detector.rebuild.inherit_position`).
    """
    return group if count == 1 else f"{group}.{index}of{count}"


def layout_of(group: str, name: str) -> int | None:
    """The shard count of ``name`` if it is one of ``group``'s detector groups (1 for ``group`` itself), else None."""
    if name == group:
        return 1
    m = re.fullmatch(re.escape(group) + r"\.(\d+)of(\d+)", name)
    return int(m[2]) if m else None


class Routed(msgspec.Struct, frozen=True, gc=False, tag="liquidation", tag_field="kind"):
    """The routing fields of a liquidation another shard owns: its base asset and event time (ms).

    The identity fields are decoded too (and so validated): a non-owner lets ``ts`` move its watermark,
    so an entry must look like a liquidation of a known venue before its time counts (a garbage entry
    with a wild ``ts`` would otherwise hold back every later tick of the shard).
    """

    event_id: str
    exchange: Exchange
    market: Market
    side: PositionSide
    base: str
    ts: Annotated[int, msgspec.Meta(ge=0)]


_UNROUTABLE = Routed(event_id="", exchange="bybit", market="linear", side="long", base="", ts=NO_TIME)
_route = msgspec.json.Decoder(Routed)


class Shard:
    """This process's share of the base assets: ``index`` of ``count`` (``count`` = 1: every asset)."""

    def __init__(self, index: int = 0, count: int = 1) -> None:
        if not 0 <= index < count:
            raise ValueError(f"shard index {index} is not in [0, {count})")
        self.index = index
        self.count = count
        self._owners: dict[str, int] = {}

    def owner(self, base: str) -> int:
        """The shard index owning ``base`` (cached; assets are few, events many)."""
        k = self._owners.get(base)
        if k is None:
            k = self._owners[base] = zlib.crc32(base.encode()) % self.count
        return k

    def owns(self, base: str) -> bool:
        """True when this shard processes ``base``."""
        return self.count == 1 or self.owner(base) == self.index

    def mine(self, events: Iterable[Liquidation]) -> tuple[list[Liquidation], int]:
        """(this shard's events, newest event time ms of the others; :data:`NO_TIME` if none)."""
        own: list[Liquidation] = []
        newest = NO_TIME
        for ev in events:
            if self.owns(ev.base):
                own.append(ev)
            elif ev.ts > newest:
                newest = ev.ts
        return own, newest


class RoutingDecoder:
    """Decodes entries of the events stream for one shard: a :class:`Liquidation` when the shard owns the
    entry's asset, else its :class:`Routed` fields (the consumer acknowledges it like any other entry).

    Raises :class:`~liq_common.codec.EntryDecodeError` (the runner dead-letters the entry) for an entry
    this shard owns that does not decode, and on shard 0 only for an entry that cannot be routed.
    """

    def __init__(self, shard: Shard) -> None:
        self.shard = shard

    def decode_flat(self, fields: Sequence[bytes]) -> Liquidation | Routed:
        """Decode one entry given as ``[field, value, ...]``."""
        if len(fields) == 2 and fields[0] == FIELD:  # the one-field entry every producer writes
            try:
                routed = _route.decode(fields[1])
            except (msgspec.ValidationError, msgspec.DecodeError):
                pass  # unroutable: the full decode below says why, on the shard that reports it
            else:
                return LIQUIDATIONS.decode_flat(fields) if self.shard.owns(routed.base) else routed
        try:
            ev = LIQUIDATIONS.decode_flat(fields)
        except EntryDecodeError:
            if self.shard.index == 0:
                raise
            return _UNROUTABLE
        if self.shard.owns(ev.base):
            return ev
        return Routed(
            event_id=ev.event_id, exchange=ev.exchange, market=ev.market, side=ev.side, base=ev.base, ts=ev.ts
        )


def split(events: Iterable[Liquidation | Routed]) -> tuple[list[Liquidation], int]:
    """(the decoded liquidations, newest event time ms of the routed-only entries; :data:`NO_TIME` if none)."""
    own: list[Liquidation] = []
    newest = NO_TIME
    for ev in events:
        if isinstance(ev, Routed):
            if ev.ts > newest:
                newest = ev.ts
        else:
            own.append(ev)
    return own, newest
