"""Fixtures of the ``liq`` tests: a database migrated by the persister's own migrations."""

from __future__ import annotations

import pytest

from liq_persister import schema as migrations


@pytest.fixture
async def migrated_url(pg_url: str) -> str:
    """A fresh database at the persister's newest schema (its own migration entry point)."""
    await migrations.migrate(pg_url)
    return pg_url
