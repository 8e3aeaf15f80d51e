"""The HTTP API under `/api/v1`: admin (queues, agents) and client cards."""
