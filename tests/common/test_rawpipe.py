"""liq_common.rawpipe against the real Redis: replies in order, error replies, the fast read path."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from liq_common import rawpipe


async def test_replies_come_back_in_order_across_many_socket_reads(redis: aioredis.Redis, streams: str) -> None:
    # 5,000 replies of ~20 bytes span several 64 KiB socket reads: the buffered path and the socket
    # path alternate and must keep the order.
    key = f"{streams}counter"
    replies = await rawpipe.execute(redis, [(b"INCR", key) for _ in range(5000)])
    assert replies == list(range(1, 5001))


async def test_an_error_reply_raises_and_the_client_stays_usable(redis: aioredis.Redis, streams: str) -> None:
    key = f"{streams}text"
    await redis.set(key, b"x")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await rawpipe.execute(redis, [(b"PING",), (b"XADD", key, b"*", b"f", b"v"), (b"PING",)])
    assert await rawpipe.execute(redis, [(b"GET", key), (b"PING",)]) == [
        b"x",
        b"PONG",
    ]  # raw replies: no redis-py callbacks


async def test_the_fast_read_path_is_available(redis: aioredis.Redis) -> None:
    # The speed of every publish depends on reading buffered replies straight from redis-py's hiredis
    # reader; an upgrade that moves its internals must fail here, not only slow the benchmarks.
    await redis.ping()
    conn = await redis.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        assert rawpipe.buffered_reader(conn) is not None
    finally:
        await redis.connection_pool.release(conn)
