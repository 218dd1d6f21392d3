"""Structured logs: one JSON object per line, with any credential scrubbed before it is written.

Nothing the hub logs on purpose carries a secret (requests are logged by route template,
agency and key id, never by header). The scrubbing filter is the second line of defence for
what a library or an exception message might carry.
"""

from __future__ import annotations

import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

# API tokens, bearer credentials, webhook secrets, PEM blocks and passwords in URLs.
_SECRETS = re.compile(
    r"exk_[0-9a-f]+_[A-Za-z0-9_\-]+"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]+=*"
    r"|whsec_[A-Za-z0-9+/=]+"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"
)
REDACTED = "[redacted]"


def scrub(text: str) -> str:
    return _SECRETS.sub(REDACTED, text)


class ScrubSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        for name, value in list(vars(record).items()):
            if isinstance(value, str) and name not in {"msg", "levelname", "name", "pathname"}:
                setattr(record, name, scrub(value))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure_logging(*, level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(ScrubSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The hub logs each request itself (by route, without query or headers).
    logging.getLogger("uvicorn.access").disabled = True
