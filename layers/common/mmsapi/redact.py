"""Secrets out of logs: API keys, view tokens, postback secrets and signatures, passwords,
Authorization headers.

Every log line of the product goes through `RedactingFormatter` (observability.py), so
a request line, an event logged whole, an exception text or a URL cannot carry them:
the value is replaced by REDACTED, the name (and a view token's send id) is kept for
the operator. Secrets are recognised by where they stand, in every form a log line
may hold them: query strings and form bodies, XML elements (raw, escaped or
percent-encoded), JSON or Python mappings, header lines, view links.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord

REDACTED: Final = "[redacted]"

# Names whose value is a secret wherever it is written.
_NAMES: Final = (
    r"api[-_]?key|apikey|x-api-key|authorization|x-mms-signature|signature"
    r"|postback[-_]?secret|view[-_]?secret|secret|password|passwd|mm7[-_]?password"
    r"|task[-_]?token"
)
_OPEN: Final = r"(?:<|%3C|&lt;)"
_CLOSE: Final = r"(?:>|%3E|&gt;)"

_RULES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # View links and tokens: /v/<send-id>.<secret> keeps the send id; a received MMS's
    # file link /v/mo.<account>.<mo-id>.<part>.<secret> keeps all but its secret.
    (
        re.compile(
            r"((?:/|%2F)v(?:/|%2F)mo\.[A-Za-z0-9_-]+\.[0-9a-f]+\.[0-9]+\.)[A-Za-z0-9_-]+", re.I
        ),
        rf"\g<1>{REDACTED}",
    ),
    (re.compile(r"((?:/|%2F)v(?:/|%2F)[0-9]+\.)[A-Za-z0-9_-]+", re.I), rf"\g<1>{REDACTED}"),
    (re.compile(r"""(["']token["']\s*:\s*["'][0-9]+\.)[^"']*""", re.I), rf"\g<1>{REDACTED}"),
    # XML elements, raw, escaped or percent-encoded (a legacy GET's XMLDATA).
    (
        re.compile(rf"({_OPEN}(?:{_NAMES}){_CLOSE}).*?(?={_OPEN}|[\"']|$)", re.I | re.M),
        rf"\g<1>{REDACTED}",
    ),
    # Quoted mappings: JSON ("name": "value") and Python reprs ('name': 'value').
    (
        re.compile(rf"""(["'](?:{_NAMES})["']\s*:\s*)(["'])(?:\\.|(?!\2).)*\2""", re.I),
        rf"\g<1>\g<2>{REDACTED}\g<2>",
    ),
    # Query strings and form bodies: name=value (also the bare `key` of some clients).
    (
        re.compile(rf"""((?:^|(?<=[?&;\s"'(]))(?:{_NAMES}|key|token)=)[^&\s"'#\\]*""", re.I),
        rf"\g<1>{REDACTED}",
    ),
    # Header lines (name: value) and credentials written without their name.
    (
        re.compile(r"(\b(?:authorization|x-mms-signature)\s*:\s*)[^\r\n\"']*", re.I),
        rf"\g<1>{REDACTED}",
    ),
    (re.compile(r"\b(Basic|Bearer)\s+[A-Za-z0-9+/=._~-]{6,}"), rf"\g<1> {REDACTED}"),
    (re.compile(r"\bsha256=[0-9a-f]{64}\b", re.I), f"sha256={REDACTED}"),
)


def redact(text: str) -> str:
    """The text with every secret value replaced by REDACTED."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log line, redacted as a whole: message, extra keys, exception."""

    def serialize(self, log: LogRecord) -> str:
        return redact(super().serialize(log))


class RedactingFilter(logging.Filter):
    """For plain `logging` loggers (the local runtime's): the message and any exception
    text are redacted before a handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
