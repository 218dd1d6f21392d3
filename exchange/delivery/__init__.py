"""Delivery of routed reports through connectors: envelopes, attempts, retries, the sweeper,
acknowledgements and the pull inbox."""
