"""liq_ingest_binance."""
