"""liq_ingest_bybit."""
