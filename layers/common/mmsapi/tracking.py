"""tracking-id: the documents' shape, base64 of MMS_<number> (TU1TXzU5Nzg3OQ== is MMS_597879)."""

from __future__ import annotations

import base64

from mmsapi.numbers import ascii_int


def tracking_id(send_id: int) -> str:
    return base64.b64encode(f"MMS_{send_id}".encode()).decode("ascii")


def parse_tracking_id(value: str) -> int | None:
    try:
        text = base64.b64decode(value, validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition("_")
    return ascii_int(number, 0, 2**63 - 1) if prefix == "MMS" else None
