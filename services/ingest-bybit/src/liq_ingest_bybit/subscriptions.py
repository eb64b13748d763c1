"""Which topics each Bybit connection carries, and the acknowledgement of every subscribe request.

* One ``allLiquidation.{symbol}`` topic per symbol (no all-market topic, exchange-feeds.md §3.2).
* One public connection may hold at most 21,000 characters of ``args`` (§3.4), so topics are packed
  into :class:`Shard` s, one connection each; new listings go to a shard with room, or a new one.
* A delisted symbol's topic leaves its shard; the connection unsubscribes it (§3.4 "unsubscribe") and a
  reconnect does not ask for it again: subscribing a topic the exchange no longer knows is answered with
  ``handler not found`` (§3.2, reported to starve the connection's other topics) and would be retried.
* Every request carries a ``req_id``; its reply says success or failure. Replies without our
  ``req_id`` (the server echoes an empty one) are matched to the oldest request, since a connection
  answers in order. A failed request, or one not answered within the ack timeout, puts all its topics
  on the retry list; retries go one topic per request, so each failure is attributed exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from liq_ingest_bybit.wire import LIQUIDATION_TOPIC, args_chars, subscribe_request

ARGS_LIMIT = 21_000
"""Characters of ``args`` one public connection may subscribe (exchange-feeds.md §3.4)."""


def topic_of(symbol: str) -> str:
    """The liquidation topic of a symbol; never the dead ``liquidation.{symbol}`` (§3.2)."""
    return LIQUIDATION_TOPIC + symbol


class Shard:
    """The topics of one connection, within ``limit`` characters of JSON ``args``."""

    def __init__(self, index: int, limit: int = ARGS_LIMIT) -> None:
        self.index = index
        self.limit = limit
        self.topics: list[str] = []
        self.version = 0
        """Bumped on every change of ``topics``: a connection re-reads them only when it moved."""
        self._chars = 2  # the brackets of an empty array

    def fits(self, topic: str) -> bool:
        """True if ``topic`` still fits (quotes and a comma included)."""
        return self._chars + args_chars([topic]) - 2 + (1 if self.topics else 0) <= self.limit

    def add(self, topic: str) -> None:
        """Add ``topic`` (the caller checked :meth:`fits`)."""
        self._chars += args_chars([topic]) - 2 + (1 if self.topics else 0)
        self.topics.append(topic)
        self.version += 1

    def remove(self, topics: set[str]) -> list[str]:
        """Drop ``topics`` this shard holds (a delisting); returns those it held. Room is freed for new ones."""
        held = [t for t in self.topics if t in topics]
        if held:
            self.topics = [t for t in self.topics if t not in topics]
            self._chars = args_chars(self.topics)
            self.version += 1
        return held


def place(shards: list[Shard], topics: list[str], limit: int = ARGS_LIMIT) -> dict[int, list[str]]:
    """Put new topics into shards (the last one with room, else a new one); returns shard index -> topics added.

    Raises:
        ValueError: A single topic is longer than the limit.
    """
    added: dict[int, list[str]] = {}
    for topic in topics:
        if not shards or not shards[-1].fits(topic):
            shards.append(Shard(len(shards), limit))
            if not shards[-1].fits(topic):
                raise ValueError(f"topic {topic!r} alone exceeds the {limit}-character args limit")
        shards[-1].add(topic)
        added.setdefault(shards[-1].index, []).append(topic)
    return added


@dataclass
class _Request:
    topics: list[str]
    sent_at: float = field(default_factory=time.monotonic)


class Acks:
    """Subscribe requests of one live connection and what the server answered.

    Args:
        batch: Topics per request (the first subscription of a connection).
        prefix: Prefix of our ``req_id`` values, unique per connection.
    """

    def __init__(self, batch: int, prefix: str) -> None:
        self.batch = batch
        self.prefix = prefix
        self.pending: dict[str, _Request] = {}
        self.acked: set[str] = set()
        self.failed: dict[str, str] = {}
        self._counter = 0

    def requests(self, topics: list[str], batch: int | None = None) -> list[bytes]:
        """Subscribe frames for ``topics`` (``batch`` per request), registered as pending."""
        size = batch or self.batch
        frames = []
        for start in range(0, len(topics), size):
            chunk = topics[start : start + size]
            self._counter += 1
            req_id = f"{self.prefix}{self._counter}"
            self.pending[req_id] = _Request(chunk)
            frames.append(subscribe_request(req_id, chunk))
        return frames

    def on_reply(self, req_id: str, success: bool, ret_msg: str) -> list[str]:
        """Record a subscribe reply; returns the topics it says failed (empty on success).

        A failure reply names the failed topic(s) after ``topic:``; the request's other topics may or
        may not have been subscribed, so they are re-sent too (an "already subscribed" answer is then a
        success) but not counted as failures. A failure naming none of them fails them all.
        """
        request = self.pending.pop(req_id, None)
        if request is None:
            if not self.pending:
                return []
            request = self.pending.pop(next(iter(self.pending)))
        if success or "already subscribed" in ret_msg:
            self.acked.update(request.topics)
            for topic in request.topics:
                self.failed.pop(topic, None)
            return []
        named = set(ret_msg.split("topic:", 1)[1].split(",")) if "topic:" in ret_msg else set()
        failed = [t for t in request.topics if t in named] or request.topics
        for topic in request.topics:
            self.failed[topic] = ret_msg
        return failed

    def expire(self, timeout: float, now: float | None = None) -> list[str]:
        """Topics of requests unanswered for ``timeout`` seconds, moved to the retry list."""
        now = time.monotonic() if now is None else now
        late = [req_id for req_id, request in self.pending.items() if now - request.sent_at >= timeout]
        topics: list[str] = []
        for req_id in late:
            for topic in self.pending.pop(req_id).topics:
                self.failed[topic] = "no reply"
                topics.append(topic)
        return topics

    def forget(self, topics: list[str]) -> None:
        """Stop tracking ``topics`` (unsubscribed): no longer acknowledged, never retried."""
        for topic in topics:
            self.acked.discard(topic)
            self.failed.pop(topic, None)
        for request in self.pending.values():
            request.topics = [t for t in request.topics if t not in topics]

    def take_retries(self) -> list[bytes]:
        """Subscribe frames re-sending every failed topic, one per request."""
        topics = list(self.failed)
        self.failed.clear()
        return self.requests(topics, batch=1)
