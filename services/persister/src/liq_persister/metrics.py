"""Prometheus metrics of liq-persister (``liq_persister_`` prefix; label ``table`` is low-cardinality).

The pending backlog is reported by the consumer runner of liq_common for both streams:
``liq_consumer_pending_entries`` (delivered, not yet committed and acknowledged) and
``liq_consumer_lag_entries`` (not yet delivered), labelled ``stream`` and ``group="persister"``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from liq_common.metrics import BATCH_BUCKETS

ROW_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000)

ROWS_WRITTEN = Counter(
    "liq_persister_rows_written_total", "Rows inserted (liquidations) or inserted/updated (cascades).", ("table",)
)
DUPLICATES = Counter(
    "liq_persister_duplicates_skipped_total",
    "Rows not written because the table already had them: redelivered liquidations, or cascade states "
    "not newer than the stored one.",
    ("table",),
)
BATCH_ROWS = Histogram("liq_persister_batch_rows", "Rows in one committed batch.", ("table",), buckets=ROW_BUCKETS)
BATCH_SECONDS = Histogram(
    "liq_persister_batch_seconds",
    "Time to write and commit one batch (one transaction).",
    ("table",),
    buckets=BATCH_BUCKETS,
)
DB_ERRORS = Counter(
    "liq_persister_db_errors_total",
    "Failed database operations by kind: unavailable (retried, entries stay pending) or data (entry isolated).",
    ("kind",),
)
DB_UP = Gauge("liq_persister_db_up", "1 while the last database operation succeeded, else 0.")
