"""Per-symbol ring buffers of the most recent liquidations, stored compactly.

Each symbol keeps its last ``size`` events as three parallel ``array('d')`` columns (event time, price,
signed USD: positive = long liquidated), ~24 bytes per event, so 1,000 symbols x 1,000 events fit in
about 24 MB instead of the ~700 MB the decoded Structs would take.
"""

from __future__ import annotations

from array import array


class SymbolRing:
    """The last ``size`` liquidations of one exchange symbol (oldest overwritten first)."""

    __slots__ = ("_pos", "count", "prices", "size", "ts", "usd")

    def __init__(self, size: int) -> None:
        self.size = size
        self.ts = array("d", bytes(8 * size))
        self.prices = array("d", bytes(8 * size))
        self.usd = array("d", bytes(8 * size))
        self.count = 0
        self._pos = 0

    def push(self, ts: int, price: float, signed_usd: float) -> None:
        """Append one event, overwriting the oldest when full."""
        pos = self._pos
        self.ts[pos] = ts
        self.prices[pos] = price
        self.usd[pos] = signed_usd
        self._pos = pos + 1 if pos + 1 < self.size else 0
        if self.count < self.size:
            self.count += 1

    def recent(self) -> list[tuple[int, float, float]]:
        """(ts ms, price, signed USD) of the held events, oldest first."""
        start = (self._pos - self.count) % self.size
        idx = [(start + i) % self.size for i in range(self.count)]
        return [(int(self.ts[i]), self.prices[i], self.usd[i]) for i in idx]


class SymbolRings:
    """Ring buffers keyed by ``exchange:market:symbol``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rings: dict[tuple[str, str, str], SymbolRing] = {}

    def create(self, key: tuple[str, str, str]) -> SymbolRing:
        """The ring of ``(exchange, market, symbol)``, created empty if new."""
        ring = self.rings.get(key)
        if ring is None:
            ring = self.rings[key] = SymbolRing(self.size)
        return ring

    def get(self, exchange: str, market: str, symbol: str) -> SymbolRing | None:
        """The ring of one symbol, if it has seen an event."""
        return self.rings.get((exchange, market, symbol))

    @property
    def events(self) -> int:
        """Events held across all rings."""
        return sum(r.count for r in self.rings.values())
