"""liq_persister."""
