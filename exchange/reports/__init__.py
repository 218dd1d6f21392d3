"""Reports: submission (single, bulk, idempotent, signed) and reading them back."""
