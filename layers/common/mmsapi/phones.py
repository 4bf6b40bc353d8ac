"""A phone's number as an MO names it, in the one form sends and opt-outs use.

Sends take E.164 digits without '+' (services/send.py recipient(): phone_digits, then
phonenumbers). An MMSC may name an MO's sender in national form (4082257140), with an
international prefix (0014082257140) or with separators (+1 408-225-7140): each must be
the number a later send names, or a STOP would not block it.
"""

from __future__ import annotations


def sender_digits(digits: str, region: str, international: bool) -> str:
    """E.164 digits without '+' of a sender's digits (phone_digits: separators, '+' and
    '00' dropped as a send's recipient's are).

    Written with '+' or '00' (`international`) they are the number as they stand.
    Otherwise they are read as international first (MM7 writes country code first, no
    '+'), and when that is not a valid number, as a national number of `region` (the
    receiving shortcode's country). Digits neither reading makes valid are kept.
    """
    if international or _valid("+" + digits, None):
        return digits
    return _valid(digits, region) or digits


def _valid(text: str, region: str | None) -> str | None:
    import phonenumbers  # only an MMS MO's path: kept off the report function's cold start

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
