"""tracking-id: the documents' shape, base64 of MMS_<number> (TU1TXzU5Nzg3OQ== is MMS_597879)."""

from __future__ import annotations

import base64


def tracking_id(send_id: int) -> str:
    return base64.b64encode(f"MMS_{send_id}".encode()).decode("ascii")


def parse_tracking_id(value: str) -> int | None:
    try:
        text = base64.b64decode(value, validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition("_")
    return int(number) if prefix == "MMS" and number.isdigit() else None
