"""The decision for one destination and one cascade: post, edit, wait or nothing. Pure, no I/O.

* Post when the state's tier is at or above the destination's minimum and above every tier already
  posted (or possibly posted) for the cascade: the first alert, and a new message on escalation.
  A tier skipped in between (high straight to critical while the destination was rate-limited) is not
  posted late: the newest tier is what matters.
* Otherwise edit the message of the highest tier, at most once per ``interval`` (the close state
  included, so the final summary may come up to one interval after the close).
* A tier whose post has an intent but no message id (outcome unknown) is never posted again and has
  nothing to edit: at most one message per cascade and tier.
"""

from __future__ import annotations

from dataclasses import dataclass

from liq_alerter.records import Record
from liq_common.events import TIERS, Cascade, Tier


@dataclass(frozen=True)
class Post:
    """Send a new message at ``tier``."""

    tier: Tier


@dataclass(frozen=True)
class Edit:
    """Edit message ``message_id`` (posted at ``tier``)."""

    tier: Tier
    message_id: str


@dataclass(frozen=True)
class Wait:
    """Come back at ``until_ms`` (wall clock, ms): the edit interval has not elapsed."""

    until_ms: int


@dataclass(frozen=True)
class Nothing:
    """No request for this state: ``reason`` is ``handled``, ``below_tier``, ``unknown_post`` or ``deleted``."""

    reason: str


Action = Post | Edit | Wait | Nothing


def plan(record: Record, state: Cascade, min_tier: Tier, now_ms: int, interval_ms: int) -> Action:
    """What to do for ``state`` given what was done before (``record``)."""
    if state.seq <= record.seq:
        return Nothing("handled")
    rank = TIERS.index
    taken = set(record.messages) | set(record.intents)
    top = max(taken, key=rank) if taken else None
    if rank(state.tier) >= rank(min_tier) and (top is None or rank(state.tier) > rank(top)):
        return Post(state.tier)
    if top is None:
        return Nothing("below_tier")
    message_id = record.messages.get(top)
    if message_id is None:
        return Nothing("unknown_post")
    if not message_id:
        return Nothing("deleted")
    due = record.edited_ms + interval_ms
    if now_ms < due:
        return Wait(due)
    return Edit(top, message_id)
