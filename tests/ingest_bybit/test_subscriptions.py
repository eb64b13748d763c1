"""Packing topics under the 21,000-character args limit and matching subscribe replies (exchange-feeds.md §3.4)."""

from __future__ import annotations

import msgspec
import pytest

from liq_ingest_bybit.app import fixed_symbols
from liq_ingest_bybit.instruments import parse_assets
from liq_ingest_bybit.settings import Settings
from liq_ingest_bybit.subscriptions import ARGS_LIMIT, Acks, Shard, place, topic_of


def test_shards_respect_the_args_limit() -> None:
    """800 topics fill connections up to, never over, 21,000 characters of JSON args."""
    topics = [topic_of(f"SYM{i:04d}USDT") for i in range(800)]
    shards: list = []
    added = place(shards, topics)
    assert sum(len(t) for t in added.values()) == 800
    assert len(shards) == 2
    for shard in shards:
        assert len(msgspec.json.encode(shard.topics)) <= ARGS_LIMIT
    assert len(msgspec.json.encode([*shards[0].topics, topics[-1]])) > ARGS_LIMIT


def test_new_topics_fill_the_last_shard_first() -> None:
    """A later listing goes to the shard with room, not to a new connection."""
    shards: list = []
    place(shards, [topic_of("BTCUSDT")])
    assert place(shards, [topic_of("NEWUSDT")]) == {0: ["allLiquidation.NEWUSDT"]}
    assert len(shards) == 1


def test_a_topic_longer_than_the_limit_is_refused() -> None:
    """No connection could ever hold it."""
    with pytest.raises(ValueError, match="exceeds"):
        place([], ["allLiquidation." + "X" * 100], limit=50)


def test_replies_match_by_req_id_or_in_order() -> None:
    """A reply with our req_id settles that request; one with an empty req_id settles the oldest."""
    acks = Acks(batch=2, prefix="c.")
    acks.requests(["a", "b", "c"])
    assert acks.on_reply("c.2", True, "") == []
    assert acks.acked == {"c"}
    assert acks.on_reply("", True, "") == []
    assert acks.acked == {"a", "b", "c"}
    assert acks.pending == {}


def test_a_failure_counts_the_named_topic_and_retries_the_request() -> None:
    """Only the named topic counts as failed; all of the request is re-sent, one topic per request."""
    acks = Acks(batch=3, prefix="c.")
    acks.requests(["allLiquidation.A", "allLiquidation.B"])
    failed = acks.on_reply("c.1", False, "error:handler not found,topic:allLiquidation.B")
    assert failed == ["allLiquidation.B"]
    frames = [msgspec.json.decode(f) for f in acks.take_retries()]
    assert [f["args"] for f in frames] == [["allLiquidation.A"], ["allLiquidation.B"]]
    assert acks.on_reply("c.2", False, "error:already subscribed,topic:allLiquidation.A") == []
    assert acks.acked == {"allLiquidation.A"}


def test_unanswered_requests_expire_into_retries() -> None:
    """A request without a reply within the ack timeout is retried."""
    acks = Acks(batch=10, prefix="c.")
    acks.requests(["x", "y"])
    assert acks.expire(timeout=5.0, now=float("inf")) == ["x", "y"]
    assert set(acks.failed) == {"x", "y"}


@pytest.mark.parametrize(
    ("symbol", "market", "assets"),
    [
        ("BTCUSDT", "linear", ("BTC", "USDT")),
        ("ETHPERP", "linear", ("ETH", "USDC")),
        ("BTC-26DEC25", "linear", ("BTC", "USDC")),
        ("1000PEPEUSDT", "linear", ("1000PEPE", "USDT")),
        ("BTCUSD", "inverse", ("BTC", "USD")),
        ("ETHUSDH26", "inverse", ("ETH", "USD")),
    ],
)
def test_assets_from_symbol_spelling(symbol: str, market: str, assets: tuple[str, str]) -> None:
    """Symbols given in BYBIT_SYMBOLS get their base and quote from their spelling."""
    assert parse_assets(symbol, market) == assets  # type: ignore[arg-type]


def test_configured_symbols_split_by_market() -> None:
    """BYBIT_SYMBOLS: inverse symbols go to the inverse stream, the rest to linear."""
    settings = Settings(bybit_symbols="btcusdt, BTCUSD ,ETHUSDH26,SOLPERP")
    assert fixed_symbols(settings) == {"linear": ["BTCUSDT", "SOLPERP"], "inverse": ["BTCUSD", "ETHUSDH26"]}
    assert fixed_symbols(Settings()) is None


def test_removing_topics_frees_room_and_marks_the_shard_changed() -> None:
    """A delisting frees its characters (a later listing fits again) and bumps the shard's version."""
    four = [topic_of(f"S{i:03d}USDT") for i in range(4)]
    limit = len(msgspec.json.encode(four))  # exactly four such topics fit
    shards: list[Shard] = []
    place(shards, four, limit=limit)
    (full,) = shards
    assert not full.fits(topic_of("S004USDT"))
    version = full.version
    assert full.remove({topic_of("S001USDT"), topic_of("NOTHEREUSDT")}) == [topic_of("S001USDT")]
    assert full.version == version + 1
    assert full.topics == [topic_of("S000USDT"), topic_of("S002USDT"), topic_of("S003USDT")]
    assert full.remove({topic_of("NOTHEREUSDT")}) == []
    assert full.version == version + 1  # nothing held, nothing changed
    place(shards, [topic_of("S004USDT")], limit=limit)
    assert len(shards) == 1  # the freed room took it


def test_forgotten_topics_are_neither_acked_nor_retried() -> None:
    acks = Acks(batch=10, prefix="t.")
    acks.requests(["a", "b", "c"])
    acks.on_reply("t.1", False, "error:handler not found,topic:b")
    acks.requests(["d"])
    acks.forget(["b", "d"])
    acks.on_reply("t.2", True, "")
    assert acks.acked == set()  # the reply to the request of "d" no longer acknowledges it
    assert acks.failed == {"a": "error:handler not found,topic:b", "c": "error:handler not found,topic:b"}
