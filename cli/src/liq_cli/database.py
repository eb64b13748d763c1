"""Read-only PostgreSQL access for the subcommands (the schema is the persister's, see its README)."""

from __future__ import annotations

import psycopg

Conn = psycopg.AsyncConnection[tuple[object, ...]]


class Unreachable(Exception):
    """Redis or PostgreSQL could not be reached or refused the query; the message says which and why."""


async def connect(url: str, connect_timeout: float = 5.0) -> Conn:
    """An autocommit connection to ``url`` (``connect_timeout`` seconds to connect).

    Raises:
        Unreachable: The server is down, refuses the credentials or the database does not exist.
    """
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=max(1, int(connect_timeout)), application_name="liq-cli"
        )
    except psycopg.Error as exc:
        raise Unreachable(f"database unreachable: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an error's text (psycopg messages span several lines)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
