"""Reports at rest: each payload is encrypted with a data key of its own (AES-256-GCM), and
the data key is sealed by the hub's key-encryption key (``sealing.py``). Reading needs both
the row in ``report_key`` and a sealing key; purging deletes the row."""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session, col, delete

from exchange.errors import ExchangeError
from exchange.i18n import t
from exchange.protection.models import ReportKey
from exchange.protection.sealing import Sealer, sealed_key_id

NONCE_BYTES = 12


class ReportPurged(ExchangeError):
    """Raised when a report's data was destroyed by a purge: only its metadata remains."""

    status = 410
    code = "report_purged"


def data_key_purpose(report_id: str) -> str:
    return f"report-data-key:{report_id}"


def lock(*, report_id: str, canonical: bytes, sealer: Sealer) -> tuple[bytes, dict[str, Any]]:
    """Encrypt a report's canonical payload under a new data key: the ciphertext to store in
    the report, and the row of its sealed data key (``report_key``) to store once the
    report row exists."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = nonce + AESGCM(data_key).encrypt(nonce, canonical, report_id.encode())
    wrapped = sealer.seal(data_key, purpose=data_key_purpose(report_id))
    return ciphertext, {
        "report_id": report_id,
        "wrapped": wrapped,
        "kek_id": sealed_key_id(wrapped),
    }


def unlock(session: Session, *, report_id: str, ciphertext: bytes, sealer: Sealer) -> bytes:
    """The canonical payload, or :class:`ReportPurged` when its data key is gone."""
    key = session.get(ReportKey, report_id)
    if key is None or not ciphertext:
        raise ReportPurged(t("report.purged", report=report_id))
    data_key = sealer.unseal(key.wrapped, purpose=data_key_purpose(report_id))
    return AESGCM(data_key).decrypt(
        ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:], report_id.encode()
    )


def destroy(session: Session, *, report_id: str) -> None:
    """Delete a report's sealed data key: its ciphertext can never be read again."""
    session.exec(delete(ReportKey).where(col(ReportKey.report_id) == report_id))
