"""One client connection: an outgoing queue, a writer applying the fault plan, and the ledger hook.

Venue behaviour (parsing requests, keepalive rules) lives in :mod:`binance` and :mod:`bybit`, which
subclass :class:`SimConnection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import TYPE_CHECKING

import structlog
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from liq_exchange_sim.corrupt import corrupt, with_extra_fields
from liq_exchange_sim.engine import Emitted
from liq_exchange_sim.faults import FaultPlan
from liq_exchange_sim.ledger import EntryKind
from liq_exchange_sim.stats import Stats
from liq_exchange_sim.truth import Feed
from liq_exchange_sim.wire import ControlAwareConnection

if TYPE_CHECKING:
    from liq_exchange_sim.hub import Hub

log = structlog.get_logger(__name__)

_Item = tuple[bytes, tuple[Emitted, ...] | None]
_Out = tuple[bytes, tuple[Emitted, ...] | None, EntryKind]

WRITE_BATCH = 256
DROP_LINGER_S = 0.05
"""Seconds a dropped connection stays half-closed before its socket is closed (see ``SimConnection.drop``)."""
"""Frames coalesced into one socket write when a backlog is queued."""


class SimConnection:
    """State and writer of one accepted WebSocket connection."""

    def __init__(self, hub: Hub, ws: ServerConnection, feed: Feed, conn_id: str, faults: FaultPlan) -> None:
        self.hub = hub
        self.ws = ws
        self.feed = feed
        self.id = conn_id
        self.faults = faults
        self.stats = Stats()
        self.path = ws.request.path if ws.request is not None else ""
        self.opened_at = time.monotonic()
        self.last_pong = self.opened_at
        self.closed = asyncio.Event()
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._reorder: list[tuple[bytes, tuple[Emitted, ...]]] = []
        self._reading_paused = False
        self._originals = 0
        self._data_frames = 0
        self._drop_now = False
        self._closing = False
        if isinstance(ws, ControlAwareConnection):
            ws.on_ping, ws.on_pong = self.on_ping_frame, self.on_pong

    # --- hooks for subclasses -----------------------------------------------------------------
    async def on_message(self, message: str | bytes) -> None:
        """Handle one client message."""

    async def keepalive(self) -> None:
        """Enforce the venue's connection rules until the connection ends."""
        await self.closed.wait()

    def on_pong(self) -> None:
        """A pong frame arrived."""
        self.last_pong = time.monotonic()
        self.stats.pongs_received += 1
        self.hub.stats.pongs_received += 1
        self.hub.changed()

    def on_ping_frame(self) -> None:
        """A protocol ping frame arrived (websockets answers it unless the connection is stalled)."""
        self.stats.ping_frames_received += 1
        self.hub.stats.ping_frames_received += 1
        self.hub.changed()

    def unsubscribe_all(self) -> None:
        """Remove every engine subscription of this connection."""

    # --- queueing -----------------------------------------------------------------------------
    def push(self, stream: str, payload: bytes, items: tuple[Emitted, ...]) -> None:
        """Queue a liquidation frame (see :class:`~liq_exchange_sim.engine.Subscriber`)."""
        self._queue.append((self.frame_for(stream, payload), items))
        if len(self._queue) >= self.hub.queue_high_water:
            self._drained.clear()
        self._wake.set()

    def frame_for(self, stream: str, payload: bytes) -> bytes:
        """The frame as this connection receives it (Binance combined streams add an envelope)."""
        return payload

    def send_control(self, frame: bytes) -> None:
        """Queue a reply (ack, pong, error); faults other than stall do not touch it."""
        self._queue.append((frame, None))
        self._wake.set()

    def queued(self) -> int:
        """Frames waiting to be written."""
        return len(self._queue)

    async def wait_drained(self) -> None:
        """Wait until the queue is below the high-water mark (or the connection ended)."""
        if not self._drained.is_set():
            waiter = asyncio.ensure_future(self.closed.wait())
            try:
                await asyncio.wait((waiter, asyncio.ensure_future(self._drained.wait())), return_when="FIRST_COMPLETED")
            finally:
                waiter.cancel()

    # --- life ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until it closes."""
        writer = asyncio.create_task(self._writer(), name=f"writer-{self.id}")
        rules = asyncio.create_task(self.keepalive(), name=f"keepalive-{self.id}")
        try:
            async for message in self.ws:
                self.stats.messages_received += 1
                self.hub.stats.messages_received += 1
                await self.on_message(message)
        except ConnectionClosed:
            pass
        finally:
            self._closing = True
            self.closed.set()
            self.unsubscribe_all()
            writer.cancel()
            rules.cancel()
            for task in (writer, rules):
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task
            self._discard(len(self._queue) + len(self._reorder))
            self._queue.clear()
            self._drained.set()
            if not any(self.stats.closes.values()):
                self._count_close("shutdown" if self.hub.shutting_down else "client")
            self.hub.connection_closed(self)

    def _count_close(self, reason: str) -> None:
        self.stats.closes[reason] += 1
        self.hub.stats.closes[reason] += 1

    async def close(self, code: int, reason: str, why: str) -> None:
        """Close with a WebSocket close frame, counting ``why`` as the close reason."""
        if self._closing:
            return
        self._closing = True
        self._count_close(why)
        log.info("sim_connection_closing", conn_id=self.id, feed=self.feed, code=code, why=why)
        await self.ws.close(code, reason)

    @property
    def closing(self) -> bool:
        """True once the simulator has started closing or dropping this connection (it takes no new frames)."""
        return self._closing

    def drop(self, why: str) -> None:
        """Close the TCP connection without a close frame (buffered frames are still flushed)."""
        if self._closing:
            return
        self._closing = True
        self._count_close(why)
        transport = self.ws.transport
        if not transport.can_write_eof():
            transport.close()
            return
        # Half-close instead of close(): close() with a client ping still unread makes the kernel answer with
        # a TCP reset, and a reset makes the client's kernel discard frames it has not read yet, frames the
        # ledger already counts as delivered. With reading paused we answer nothing more (no write can follow
        # the EOF); the client reads every frame, then EOF (1006), and the transport is closed a bit later.
        transport.pause_reading()
        transport.write_eof()
        asyncio.get_running_loop().call_later(DROP_LINGER_S, transport.close)

    def sync_faults(self) -> None:
        """Apply level-triggered faults (stall pauses reading); called by the simulator's ticker."""
        stalled = self.faults.stall
        if stalled != self._reading_paused and not self._closing:
            self._reading_paused = stalled
            if stalled:
                self.ws.transport.pause_reading()
            else:
                self.ws.transport.resume_reading()
                self.on_unstall()

    def on_unstall(self) -> None:
        """The stall fault was lifted: restart the venue's timers."""
        self.last_pong = time.monotonic()

    # --- writer -------------------------------------------------------------------------------
    def _discard(self, count: int) -> None:
        self.stats.frames_discarded += count
        self.hub.stats.frames_discarded += count

    async def _writer(self) -> None:
        queue = self._queue
        high_water = self.hub.queue_high_water
        while True:
            if not queue and not self._reorder:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            out: list[_Out] = []
            while queue and len(out) < WRITE_BATCH and not self._drop_now:
                frame, items = queue.popleft()
                if self.faults.stall or self._closing:
                    self._discard(1)
                    continue
                if items is None:
                    out.append((frame, None, "delivered"))
                    continue
                window = self.faults.reorder_window
                if window is not None and window > 1:
                    self._reorder.append((frame, items))
                    if len(self._reorder) >= window:
                        self._take_reorder(out)
                    continue
                self._prepare(frame, items, out)
            if not queue and self._reorder and not self._drop_now:
                self._take_reorder(out)  # a partial group goes out when nothing else is waiting
            if len(queue) < high_water // 2:
                self._drained.set()
            if out:
                await self._flush(out)
            if self._drop_now:
                self.drop("drop_fault")
                self._drop_now = False

    def _take_reorder(self, out: list[_Out]) -> None:
        batch, self._reorder = self._reorder, []
        for frame, items in reversed(batch):
            if self._drop_now:
                self._discard(1)
                continue
            self._prepare(frame, items, out)

    def _prepare(self, frame: bytes, items: tuple[Emitted, ...], out: list[_Out]) -> None:
        """Apply malformed/duplicate/drop faults to one liquidation frame and add it to the write batch."""
        faults = self.faults
        kind: EntryKind = "delivered"
        if faults.extra_fields:
            frame = with_extra_fields(frame, faults.extra_fields)
        malformed = faults.take_malformed()
        if malformed is not None:
            frame = corrupt(frame, malformed, faults.huge_bytes)
            kind = "corrupted"
        out.append((frame, items, kind))
        self._originals += 1
        self._data_frames += 1
        limit = faults.drop_after_frames
        if limit is not None and self._data_frames >= limit:
            self._drop_now = True
            return
        every = faults.duplicate_every
        if every and kind == "delivered" and self._originals % every == 0:
            out.append((frame, items, "duplicate"))
            self._data_frames += 1
            if limit is not None and self._data_frames >= limit:
                self._drop_now = True

    async def _flush(self, out: list[_Out]) -> None:
        """Write a batch, then count it and record its liquidations in the ledger."""
        if isinstance(self.ws, ControlAwareConnection):
            await self.ws.send_texts([frame for frame, _, _ in out])
        else:  # pragma: no cover - the simulator always creates ControlAwareConnection
            for frame, _, _ in out:
                await self.ws.send(frame, text=True)
        stats, hub = self.stats, self.hub
        record = hub.ledger.record_delivery
        data = control = 0
        for _, items, kind in out:
            if items is None:
                control += 1
                continue
            data += 1
            for item in items:
                record(self.id, self.feed, item.seq, item.record, item.usd, kind)
        stats.frames_sent += data
        hub.stats.frames_sent += data
        stats.control_frames_sent += control
        hub.stats.control_frames_sent += control
        hub.changed()
