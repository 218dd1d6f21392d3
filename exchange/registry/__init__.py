"""The shared report schemas: loading, checking, compatibility between versions, validation."""
