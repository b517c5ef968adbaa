"""``GET /metrics``: the Prometheus scrape."""
