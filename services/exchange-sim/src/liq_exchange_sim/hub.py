"""State shared by the listeners, connections and scenario runners of one simulator."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from liq_exchange_sim.config import SimConfig
from liq_exchange_sim.engine import Engine
from liq_exchange_sim.faults import FaultPlan
from liq_exchange_sim.instruments import Universe
from liq_exchange_sim.ledger import Ledger
from liq_exchange_sim.stats import Stats
from liq_exchange_sim.truth import FEEDS, Feed

if TYPE_CHECKING:
    from liq_exchange_sim.connection import SimConnection

_XID = "0123456789abcdefghijklmnopqrstuv"


class Hub:
    """Config, instruments, engine, ledger, counters, fault defaults and open connections."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.universe = config.instruments if config.instruments is not None else Universe.default()
        self.ledger = Ledger(keep_entries=config.keep_ledger_entries)
        self.stats = Stats()
        self.engine = Engine(
            self.universe, self.ledger, self.stats, config.binance_throttle_ms, config.bybit_push_interval_ms
        )
        self.default_faults: dict[Feed, FaultPlan] = {feed: FaultPlan() for feed in FEEDS}
        self.connections: dict[str, SimConnection] = {}
        self.queue_high_water = config.queue_high_water
        self.driven = 0
        self.shutting_down = False
        self._count = 0
        self._waiters: list[asyncio.Future[None]] = []

    def new_conn_id(self, feed: Feed) -> str:
        """A deterministic id shaped like Bybit's ``conn_id`` (``d8bu1olkndm7crnfs1e0-j6akw``)."""
        self._count += 1
        digest = hashlib.blake2b(f"{feed}:{self._count}".encode(), digest_size=25).digest()
        text = "".join(_XID[b % 32] for b in digest)
        return f"{text[:20]}-{text[20:25]}"

    def connection_opened(self, conn: SimConnection) -> None:
        """Register an accepted connection."""
        self.connections[conn.id] = conn
        self.stats.connections_opened += 1
        conn.stats.connections_opened += 1
        self.changed()

    def connection_closed(self, conn: SimConnection) -> None:
        """Forget a finished connection."""
        self.connections.pop(conn.id, None)
        self.stats.connections_closed += 1
        conn.stats.connections_closed += 1
        self.changed()

    def changed(self) -> None:
        """Wake everyone in :meth:`wait_for` to re-check their predicate."""
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        seconds: float,
        describe: Callable[[], Any],
    ) -> None:
        """Return once ``predicate()`` is true, re-checking on every counter change.

        Raises:
            TimeoutError: Still false after ``seconds``; the message carries ``describe()``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition still false after {seconds}s; stats={describe()}")
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            # A periodic re-check covers predicates on state that does not call changed() (e.g. time).
            await asyncio.wait((fut,), timeout=min(remaining, 0.1))
