"""Prometheus metrics of the alerter. Labels are destination names and outcome words, never URLs or tokens."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "liq_alerter_requests_total",
    "HTTP requests to alert destinations, by action (post, edit) and outcome (ok, rate_limited, retry, ...).",
    ("destination", "action", "outcome"),
)
MESSAGES = Counter(
    "liq_alerter_messages_total", "Alert messages posted or edited successfully.", ("destination", "action")
)
DEAD = Counter(
    "liq_alerter_dead_letters_total",
    "Alerts given up and written to the dead-letter stream, by reason (rejected, retry, unknown, error).",
    ("destination", "reason"),
)
UNKNOWN_POSTS = Counter(
    "liq_alerter_post_outcome_unknown_total",
    "Posts whose outcome is unknown (no answer, or a crash between sending and recording); never re-sent.",
    ("destination",),
)
RECORDS_RESTORED = Counter(
    "liq_alerter_records_restored_total",
    "Cascade records whose posted/intended messages Redis had lost and this process restored from memory.",
    ("destination",),
)
RATE_LIMITED_SECONDS = Counter(
    "liq_alerter_rate_limited_seconds_total", "Seconds of waiting requested by 429 answers.", ("destination",)
)
DESTINATION_UP = Gauge(
    "liq_alerter_destination_up", "1 while a destination is enabled, 0 once disabled (404/401/403).", ("destination",)
)
PENDING = Gauge("liq_alerter_pending_cascades", "Cascades with an alert action to do.", ("destination",))
SKIPPED = Counter(
    "liq_alerter_states_skipped_total",
    "Cascade states not offered to destinations, by reason (stale: older than MAX_STATE_AGE).",
    ("reason",),
)
POST_DELAY = Histogram(
    "liq_alerter_post_delay_seconds",
    "From a cascade state's emission to its message being posted.",
    ("destination",),
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
