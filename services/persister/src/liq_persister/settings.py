"""Settings of liq-persister, read from the environment once in ``main``."""

from __future__ import annotations

import socket
from typing import Annotated, Literal

import msgspec

from liq_common.settings import CommonSettings, Port, PositiveFloat, PositiveInt, Secret

NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]


class Settings(CommonSettings, frozen=True, kw_only=True, rename="upper"):
    """liq-persister settings (environment variable = upper-case field name).

    Attributes:
        database_url: Runtime connection (role with only INSERT/upsert rights, see sql/roles.sql).
        migrate_database_url: Owner connection used for migrations; empty means ``database_url``.
        migrate_on_start: Apply pending migrations at start; when false (or when the runtime role
            cannot), the service only checks that the schema is current and exits 2 if it is not.
        timescaledb: ``auto`` (use the extension when it can be created), ``on`` (require it), ``off``.
        retention_days: TimescaleDB only: drop liquidation chunks older than this; 0 keeps everything.
        group: Consumer group on both streams.
        consumer: Consumer name, stable across restarts so un-acknowledged entries come back to it.
        writers: Consumers of the events stream in this process, each with its own connection, so one
            decodes while another waits for PostgreSQL (names ``<consumer>-0``, ``<consumer>-1``, ...).
        batch_rows: N: most entries written in one transaction.
        flush_ms: T: after a batch smaller than N, the next read waits until T ms after the previous
            one, so a batch is written at N rows or T ms, whichever comes first.
        db_timeout: Seconds a connection attempt or a batch transaction may take before the database
            is considered down (the batch stays pending and is retried).
    """

    database_url: Secret = msgspec.field(default_factory=lambda: Secret("postgresql://127.0.0.1:5432/liq"))
    migrate_database_url: Secret = msgspec.field(default_factory=lambda: Secret(""))
    migrate_on_start: bool = True
    timescaledb: Literal["auto", "on", "off"] = "auto"
    retention_days: NonNegativeInt = 0
    group: str = "persister"
    consumer: str = msgspec.field(default_factory=socket.gethostname)
    writers: PositiveInt = 2
    batch_rows: PositiveInt = 5000
    flush_ms: NonNegativeInt = 200
    db_timeout: PositiveFloat = 30.0
    metrics_port: Port = 9104

    @property
    def owner_url(self) -> str:
        """Connection string for migrations."""
        return (self.migrate_database_url or self.database_url).get()
