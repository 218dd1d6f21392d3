"""The tamper-evident exchange log: events, the RFC 9162 Merkle tree over them, signed
checkpoints (C2SP tlog-checkpoint), witness cosignatures, proofs and offline verification."""
