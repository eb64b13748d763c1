"""The per-destination decision: post, edit, wait or nothing."""

from __future__ import annotations

from liq_alerter.plan import Edit, Nothing, Post, Wait, plan
from liq_alerter.records import Record
from tests.alerter.harness import cascade

INTERVAL = 10_000


def test_first_state_at_min_tier_posts() -> None:
    """A cascade opening at the minimum tier is posted."""
    assert plan(Record(), cascade(0, "high"), "high", 0, INTERVAL) == Post("high")


def test_below_min_tier_does_nothing_until_it_reaches_it() -> None:
    """Below the minimum nothing is sent; reaching it later posts."""
    assert plan(Record(), cascade(0, "medium"), "high", 0, INTERVAL) == Nothing("below_tier")
    assert plan(Record(seq=0), cascade(1, "high"), "high", 0, INTERVAL) == Post("high")


def test_growth_edits_at_most_once_per_interval() -> None:
    """Updates edit the posted message, but not before the interval since the last post or edit."""
    record = Record(seq=0, edited_ms=1_000, messages={"high": "m1"})
    assert plan(record, cascade(1, "high"), "high", 5_000, INTERVAL) == Wait(11_000)
    assert plan(record, cascade(1, "high"), "high", 11_000, INTERVAL) == Edit("high", "m1")


def test_escalation_posts_a_new_message_and_deescalation_edits() -> None:
    """A higher tier gets a new message; a lower one keeps editing the highest message."""
    record = Record(seq=2, edited_ms=0, messages={"high": "m1"})
    assert plan(record, cascade(3, "critical"), "high", 0, INTERVAL) == Post("critical")
    record = Record(seq=3, edited_ms=0, messages={"high": "m1", "critical": "m2"})
    assert plan(record, cascade(4, "high"), "high", 20_000, INTERVAL) == Edit("critical", "m2")


def test_old_or_repeated_states_do_nothing() -> None:
    """A redelivered or older state is recognised as handled."""
    record = Record(seq=4, messages={"high": "m1"})
    assert plan(record, cascade(4, "critical"), "high", 0, INTERVAL) == Nothing("handled")
    assert plan(record, cascade(2, "critical"), "high", 0, INTERVAL) == Nothing("handled")


def test_unknown_post_is_never_repeated() -> None:
    """An intent without a message id blocks re-posting that tier (and has nothing to edit)."""
    record = Record(seq=0, intents={"high": 123})
    assert plan(record, cascade(1, "high"), "high", 99_999, INTERVAL) == Nothing("unknown_post")
    assert plan(record, cascade(2, "critical"), "high", 99_999, INTERVAL) == Post("critical")


def test_deleted_message_is_not_reposted() -> None:
    """A message a user deleted is neither edited nor posted again."""
    record = Record(seq=0, messages={"high": ""})
    assert plan(record, cascade(1, "high"), "high", 99_999, INTERVAL) == Nothing("deleted")
