"""A bounded memory of recent event ids, to drop the duplicates that overlapping connections produce.

During a proactive rotation two connections deliver the same frames for a few seconds, and a server
may replay recent frames after a reconnect. Event ids are deterministic (:func:`liq_common.events.make_event_id`),
so remembering the last ``capacity`` ids of a feed is enough to publish each liquidation once.
"""

from __future__ import annotations


class RecentIds:
    """Insertion-ordered set of at most ``capacity`` ids; the oldest is forgotten first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._ids: dict[str, None] = {}

    def add(self, event_id: str) -> bool:
        """Remember ``event_id``; True if it is new, False if it was already remembered."""
        ids = self._ids
        if event_id in ids:
            return False
        ids[event_id] = None
        if len(ids) > self.capacity:
            del ids[next(iter(ids))]
        return True

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids
