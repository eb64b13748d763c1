"""What every exchange ingestor shares: feed settings, metrics, the reject counter, tiered liquidation
logging, overlap de-duplication, the publishing sink and the websocket connection supervisor.

Exchange quirks (wire schemas, units, subscriptions, heartbeats) stay in each ingest service.
"""
