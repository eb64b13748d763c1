"""Prometheus metrics that code in ``liq_common`` records (producer, consumer runner, feeds).

Names follow Prometheus conventions: ``liq_`` prefix, base units (seconds), ``_total`` for counters.
Labels are low-cardinality (stream, group, exchange, market, reason), never a symbol or an id.
Service-specific metrics live in each service's own ``metrics`` module.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# --- producer ---------------------------------------------------------------------------------------
PUBLISHED = Counter("liq_stream_published_total", "Entries added to a stream.", ("stream",))
PUBLISH_SECONDS = Histogram(
    "liq_stream_publish_batch_seconds", "Time of one pipelined XADD batch.", ("stream",), buckets=BATCH_BUCKETS
)
PUBLISH_ERRORS = Counter(
    "liq_stream_publish_errors_total", "Failed XADD batches (retried; nothing is dropped).", ("stream",)
)
PUBLISH_BUFFERED = Gauge(
    "liq_stream_publish_buffered", "Events waiting in the producer buffer for their XADD.", ("stream",)
)

# --- consumer runner --------------------------------------------------------------------------------
CONSUMED = Counter(
    "liq_consumer_entries_total",
    "Stream entries handled by a consumer group, by outcome (acked, dead, retried).",
    ("stream", "group", "outcome"),
)
DEAD_LETTERS = Counter(
    "liq_dead_letters_total", "Entries moved to the dead-letter stream, by reason.", ("stream", "group", "reason")
)
HANDLER_SECONDS = Histogram(
    "liq_consumer_batch_seconds",
    "Time the handler took for one batch (decode excluded).",
    ("stream", "group"),
    buckets=BATCH_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "liq_consumer_lag_entries", "Entries in the stream not yet delivered to the group.", ("stream", "group")
)
CONSUMER_PENDING = Gauge(
    "liq_consumer_pending_entries", "Entries delivered to the group but not yet acknowledged.", ("stream", "group")
)
STREAM_LENGTH = Gauge("liq_stream_length", "Entries in the stream (XLEN), sampled by its consumers.", ("stream",))
GROUP_RECREATED = Counter(
    "liq_consumer_group_recreated_total",
    "Consumer group re-created after NOGROUP (Redis restarted without persistence or key deleted).",
    ("stream", "group"),
)
TRIMMED_PENDING = Counter(
    "liq_consumer_trimmed_pending_total",
    "Pending entries found deleted from the stream (trimmed by MAXLEN before being processed): data loss.",
    ("stream", "group"),
)
HANDLER_RETRIES = Counter(
    "liq_consumer_transient_errors_total",
    "Handler failures from a transient cause (e.g. database down); entries stay pending and are retried.",
    ("stream", "group"),
)
