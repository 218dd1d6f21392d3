"""Operating the hub: health, readiness, metrics, published keys and worker probes."""
