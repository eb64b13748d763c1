"""Pipelined Redis commands packed by hiredis: the hot-path alternative to redis-py's pipeline.

redis-py's asyncio client packs commands in pure Python, which costs about 40% of an ingestor's CPU at
20,000 events/s. Here the whole batch is packed by hiredis' C packer, written in one ``send``, and the
replies are read back in order. Any failure mid-batch disconnects the connection (its reply stream is
unknown), so a retry starts clean; a Redis error reply raises :class:`redis.exceptions.ResponseError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis

Command = Sequence[bytes | str | int]


async def execute(client: aioredis.Redis, commands: Sequence[Command]) -> list[Any]:
    """Send ``commands`` in one round trip; returns their replies in order."""
    if not commands:
        return []
    pack = cast(Callable[[tuple[Any, ...]], bytes], hiredis.pack_command)
    packed = b"".join([pack(tuple(command)) for command in commands])
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.send_packed_command(packed, check_health=False)
        replies = [await conn.read_response() for _ in commands]
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)
    return replies
