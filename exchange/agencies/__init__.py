"""Agencies (the hub's participants), their API keys and their Ed25519 signing keys."""
