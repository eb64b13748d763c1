"""What every exchange ingestor shares: feed settings, metrics, the reject counter, tiered liquidation
logging, overlap de-duplication, the publishing sink, the websocket connection supervisor, and feed health
(lifecycle events on the feed-status stream, silent-feed detection, cross-exchange activity).

Exchange quirks (wire schemas, units, subscriptions, heartbeats) stay in each ingest service.
"""
