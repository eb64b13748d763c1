"""Prometheus metrics of liq-detector (``liq_detector_`` prefix; labels are low-cardinality)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS = Counter("liq_detector_events_total", "Liquidations fed to the engine.")
LATE = Counter(
    "liq_detector_late_events_total", "Liquidations later than the allowed lateness (counted at the next tick)."
)
DUPLICATES = Counter("liq_detector_duplicate_events_total", "Liquidations ignored as duplicates (same event id).")
CASCADES = Counter("liq_detector_cascades_total", "Cascade states published, by status and tier.", ("status", "tier"))
OPEN = Gauge("liq_detector_open_cascades", "Cascades currently open.")
LAG = Gauge("liq_detector_lag_seconds", "Wall clock minus the newest exchange event time processed.")
WATERMARK_LAG = Gauge("liq_detector_watermark_lag_seconds", "Wall clock minus the event-time watermark.")
WINDOW_EVENTS = Gauge("liq_detector_window_events", "Liquidations held in all sliding windows.")
ASSETS = Gauge("liq_detector_assets", "Base assets with a window.")
RING_EVENTS = Gauge("liq_detector_ring_events", "Liquidations held in the per-symbol ring buffers.")
REPLAYED = Counter("liq_detector_replayed_events_total", "Liquidations replayed from the stream on start.")
STALE = Gauge("liq_detector_dashboard_stale_events", "Events too old for the in-memory dashboard minutes.")
DASHBOARD_ERRORS = Counter(
    "liq_detector_dashboard_write_errors_total",
    "Dashboard pipelines Redis rejected (error reply); logged, not retried.",
)
FEED_STATUS_BAD = Counter(
    "liq_detector_feed_status_undecodable_total", "Feed-status entries that did not decode (skipped for coverage)."
)
