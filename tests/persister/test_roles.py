"""Least privilege: migrations run as an owner role, the persister's runtime role may only insert/upsert."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from liq_common.events import FeedStatus
from liq_common.observability import Health
from liq_persister import schema
from liq_persister.database import Database, DatabaseStatus
from liq_persister.feed import FeedWriter
from liq_persister.writer import CascadeWriter, LiquidationWriter, prepare_stage
from tests.persister.conftest import scalar
from tests.persister.factories import cascade, liquidations

# The same race-tolerant creation as migration 0004, run as the administrator because the owner role
# (like in production) has no CREATEROLE.
GROUPS = b"""
DO $$
DECLARE name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['liq_writer', 'liq_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END;
        END IF;
    END LOOP;
END $$;
"""


def _as(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


@pytest.fixture
def roles(pg_url: str) -> Iterator[dict[str, str]]:
    """Owner, runtime and reader login roles (unique to this test) and their URLs on the test database."""
    tag = uuid.uuid4().hex[:8]
    names = {"owner": f"liq_t_owner_{tag}", "runtime": f"liq_t_rt_{tag}", "reader": f"liq_t_rd_{tag}"}
    database = urlsplit(pg_url).path.lstrip("/")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(GROUPS)
        conn.execute(f'CREATE ROLE "{names["owner"]}" LOGIN'.encode())
        conn.execute(f'CREATE ROLE "{names["runtime"]}" LOGIN IN ROLE liq_writer'.encode())
        conn.execute(f'CREATE ROLE "{names["reader"]}" LOGIN IN ROLE liq_reader'.encode())
        conn.execute(f'ALTER DATABASE "{database}" OWNER TO "{names["owner"]}"'.encode())
    yield {kind: _as(pg_url, name) for kind, name in names.items()}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        quoted = ", ".join(f'"{name}"' for name in names.values())
        conn.execute(f"REASSIGN OWNED BY {quoted} TO CURRENT_USER".encode())
        conn.execute(f"DROP OWNED BY {quoted}".encode())
        for name in names.values():
            conn.execute(f'DROP ROLE "{name}"'.encode())


def test_migrate_command_runs_as_the_owner(roles):
    """`python -m liq_persister migrate` with MIGRATE_DATABASE_URL applies every version; the owner owns it all."""
    env = {**os.environ, "DATABASE_URL": roles["runtime"], "MIGRATE_DATABASE_URL": roles["owner"], "LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "-m", "liq_persister", "migrate"], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "applied 0004 grants" in done.stdout.decode()
    again = subprocess.run(
        [sys.executable, "-m", "liq_persister", "migrate"], env=env, capture_output=True, timeout=60, check=False
    )
    assert again.returncode == 0
    assert "applied" not in again.stdout.decode()
    with psycopg.connect(roles["owner"]) as conn:
        owners = conn.execute(
            b"SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relname IN"
            b" ('liquidations', 'cascades', 'liquidations_1m', 'schema_migrations')"
        ).fetchall()
    assert owners == [(urlsplit(roles["owner"]).username,)]


async def test_runtime_role_can_insert_and_upsert_but_nothing_else(roles):
    """The runtime role writes liquidations and cascades; DELETE, UPDATE, TRUNCATE, DROP, DDL and reading
    liquidations fail."""
    await schema.migrate(roles["owner"])
    status = DatabaseStatus(Health())
    liq_db = Database(roles["runtime"], "l", status, 30.0, on_connect=prepare_stage)
    cascade_db = Database(roles["runtime"], "c", status, 30.0)
    feed_db = Database(roles["runtime"], "f", status, 30.0)
    try:
        events = liquidations(500)
        assert await LiquidationWriter(liq_db).write(events) == 500
        assert await LiquidationWriter(liq_db).write(events) == 0
        writer = CascadeWriter(cascade_db)
        assert await writer.write([cascade("X", 0, "open")]) == 1
        assert await writer.write([cascade("X", 2), cascade("X", 1)]) == 1
        assert await writer.write([cascade("X", 1)]) == 0
        feed = FeedWriter(feed_db)
        down = FeedStatus(exchange="binance", market="linear", conn="0", status="disconnected", ts=1_000, reason="x")
        up = FeedStatus(exchange="binance", market="linear", conn="0", status="reconnected", ts=2_000, session=2)
        assert await feed.write([down, up]) == 2  # gap opened and closed
    finally:
        await liq_db.close()
        await cascade_db.close()
        await feed_db.close()
    await schema.check(roles["runtime"])

    forbidden = [
        "DELETE FROM liquidations",
        "UPDATE liquidations SET price = 0",
        "TRUNCATE liquidations",
        "DROP TABLE liquidations",
        "DELETE FROM cascades",
        "DROP TABLE cascades",
        "DELETE FROM feed_gaps",
        "DELETE FROM feed_status",
        "SELECT count(*) FROM feed_status",
        "SELECT count(*) FROM liquidations",
        "CREATE TABLE public.intruder (x int)",
        "ALTER TABLE liquidations ADD COLUMN x int",
        "INSERT INTO schema_migrations (version, name) VALUES (99, 'x')",
        "DELETE FROM schema_migrations",
    ]
    async with await psycopg.AsyncConnection.connect(roles["runtime"], autocommit=True) as conn:
        for statement in forbidden:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(statement.encode())
    assert await scalar(roles["owner"], "SELECT count(*) FROM liquidations") == 500


async def test_reader_role_reads_everything_and_writes_nothing(roles):
    """The reader group (dashboards, CLI) may SELECT the three objects and nothing more."""
    await schema.migrate(roles["owner"])
    for relation in ("liquidations", "cascades", "liquidations_1m"):
        assert await scalar(roles["reader"], f"SELECT count(*) FROM {relation}") == 0
    async with await psycopg.AsyncConnection.connect(roles["reader"], autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute(b"DELETE FROM cascades")


async def test_runtime_role_cannot_migrate(roles):
    """Pointed at an empty database with only the runtime role, migrating fails and nothing is created."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await schema.migrate(roles["runtime"])
    with pytest.raises(schema.SchemaError):
        await schema.check(roles["runtime"])
