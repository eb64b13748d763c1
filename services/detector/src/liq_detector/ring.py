"""Per-symbol ring buffers of the most recent liquidations, stored compactly.

Each symbol keeps its last ``size`` events in one ``array('d')`` of (event time, price, signed USD:
positive = long liquidated) triples, ~24 bytes per event, so 1,000 symbols x 1,000 events fit in about
24 MB instead of the ~700 MB the decoded Structs would take. The three values of an event are adjacent,
so recording one touches one cache line.
"""

from __future__ import annotations

from array import array
from typing import Protocol, cast


class Doubles(Protocol):
    """What the engine uses of ``SymbolRing.data``: float items by index."""

    def __getitem__(self, index: int, /) -> float: ...

    def __setitem__(self, index: int, value: float, /) -> None: ...

    def __len__(self) -> int: ...


class SymbolRing:
    """The last ``size`` liquidations of one exchange symbol (oldest overwritten first).

    ``data[pos:pos + 3]`` is where the next event goes and ``full`` says whether every slot holds one.
    The engine writes these fields inline (as :meth:`push` does) on its per-event path. ``data`` is a
    memoryview of the array: storing a number through it costs a third less than through the array.
    """

    __slots__ = ("data", "exchange", "feed", "full", "market", "pos", "size", "symbol")

    def __init__(self, size: int, exchange: str = "", market: str = "", symbol: str = "") -> None:
        self.size = size
        self.exchange, self.market, self.symbol = exchange, market, symbol
        self.feed = f"{exchange}:{market}"
        self.data = cast(Doubles, memoryview(array("d", bytes(24 * size))))
        self.pos = 0
        self.full = False

    @property
    def count(self) -> int:
        """Events held."""
        return self.size if self.full else self.pos // 3

    def push(self, ts: int, price: float, signed_usd: float) -> None:
        """Append one event, overwriting the oldest when full."""
        data, pos = self.data, self.pos
        data[pos] = ts
        data[pos + 1] = price
        data[pos + 2] = signed_usd
        pos += 3
        if pos == len(data):
            pos = 0
            self.full = True
        self.pos = pos

    def recent(self) -> list[tuple[int, float, float]]:
        """(ts ms, price, signed USD) of the held events, oldest first."""
        data, pos = self.data, self.pos
        order = [*range(pos, len(data), 3), *range(0, pos, 3)] if self.full else range(0, pos, 3)
        return [(int(data[j]), data[j + 1], data[j + 2]) for j in order]


class SymbolRings:
    """Ring buffers keyed by ``exchange:market:symbol``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rings: dict[tuple[str, str, str], SymbolRing] = {}

    def create(self, key: tuple[str, str, str]) -> SymbolRing:
        """The ring of ``(exchange, market, symbol)``, created empty if new."""
        ring = self.rings.get(key)
        if ring is None:
            ring = self.rings[key] = SymbolRing(self.size, *key)
        return ring

    def get(self, exchange: str, market: str, symbol: str) -> SymbolRing | None:
        """The ring of one symbol, if it has seen an event."""
        return self.rings.get((exchange, market, symbol))

    @property
    def events(self) -> int:
        """Events held across all rings."""
        return sum(r.count for r in self.rings.values())
