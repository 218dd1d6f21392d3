"""An auditor's verifier for the exchange hub, written apart from the hub: it shares no
code with it, so a hub that was subverted cannot have subverted its verifier too. It needs
only the log's public key (and the witnesses' keys), published by the hub and checked out
of band."""

from exchange_verify.errors import Failed

__all__ = ["Failed"]
