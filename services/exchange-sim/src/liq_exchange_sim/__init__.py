"""liq_exchange_sim."""
