"""The E-code catalogue: one table that code, answers and tests read.

Texts and what triggers each: docs/errors.md. "X" in a text is replaced by the slide number
(counted from 1) or by the limit that was exceeded.
"""

from __future__ import annotations

from typing import Final

CATALOGUE: Final[dict[str, str]] = {
    "E100": "Invalid request, please make a valid XML Post request.",
    "E104": "Authentication failed, Invalid API-key.",
    "E105": "No API access to this user.",
    "E106": "Time interval between each API call should be at least X seconds.",
    "E107": "Invalid action. This API user is not allowed to use this action",
    "E108": "Invalid XML. XML parsing failed.",
    "E110": "Invalid 'to' / receiver number.",
    "E111": "Invalid 'from' / shortcode.",
    "E112": "IP was not whitelisted. API call rejected.",
    "E113": "Exceeded the allowed throughput for this API action.",
    "E114": "Phone number is blacklisted. API call rejected.",
    "E120": "Account has reached the API request limit.",
    "E212": "page-number is invalid.",
    "E213": "items-per-page is invalid",
    "E214": "start-date is invalid.",
    "E223": "More than one object is not allowed in the same slide.",
    "E224": "MMS audio/video/image are not allowed with object in the same slide.",
    "E225": "Exceeded number of slides allowed for the MMS.",
    "E226": "MMS audio / video are not allowed in the same slide.",
    "E227": "MMS video / image are not allowed in the same slide.",
    "E228": "MMS text cannot exceed X characters.",
    "E229": "Content not allowed.",
    "E230": "Invalid / bad slide duration in slide X.",
    "E241": "Invalid mms-id / MMS do not exist.",
    "E311": "Invalid MMS name / name is required.",
    "E312": "No slides.",
    "E313": "Slide X is empty.",
    "E314": "Invalid message-subject / message-subject is required.",
    "E331": "Image file in slide X is too big.",
    "E332": "Audio file in slide X is too big.",
    "E333": "Video file in slide X is too big.",
    "E334": "Text file in slide X is too long.",
    "E335": "vCard file in slide X is too big.",
    "E336": "iCal file in slide X is too big.",
    "E337": "PDF file in slide X is too big.",
    "E338": "Passbook file in slide X is too big.",
    "E341": "Image file in slide X is corrupted.",
    "E351": "Could not copy Image file in slide X.",
    "E352": "Could not copy Audio file in slide X.",
    "E353": "Could not copy Video file in slide X.",
    "E354": "Could not copy Text file in slide X.",
    "E355": "Could not copy vCard file in slide X.",
    "E356": "Could not copy iCal file in slide X.",
    "E357": "Could not copy PDF file in slide X.",
    "E358": "Could not copy Passbook file in slide X.",
    "E503": "Internal error.",
    "E618": "Carrier lookup failed. Please retry.",
    "E619": "Carrier not provisioned.",
    "E620": "mms-id is required.",
    "E622": "fallback-sms-text is required.",
    "E626": "MMS not available. Encoding in progress, try again later.",
    "E627": "Invalid service-id / service-id is required.",
    "E628": "Mobile operator / carrier not supported.",
    "E629": "Unrecognized content type.",
    "E650": "Invalid operator-id / operator-id is required.",
    "E651": "Invalid operator-id / operator-id not found in the system.",
    "E652": (
        "Incorrect disablefallbacksms value. It is optional, but accepts only "
        "'yes', 'no' or '' if set."
    ),
    "E1130": "The personalized image template id in slide X is invalid",
    "E1131": "Only one personalized image template is allowed per MMS.",
}


class ApiError(Exception):
    """An API-level failure: answered as status Failure with code and text.

    `x` fills the "X" of the catalogue text (a slide number or a limit);
    `detail` is appended for the generic codes (E100, E108, E35x) so that the
    client learns what exactly was wrong without the code changing.
    """

    def __init__(self, code: str, x: int | str | None = None, detail: str | None = None):
        if code not in CATALOGUE:
            raise KeyError(f"unknown error code {code}")
        self.code = code
        self.x = x
        self.detail = detail
        super().__init__(f"{code}: {self.info}")

    @property
    def info(self) -> str:
        text = CATALOGUE[self.code]
        if self.x is not None:
            text = text.replace(" X ", f" {self.x} ").replace(" X.", f" {self.x}.")
        if self.detail:
            text = f"{text} ({self.detail})"
        return text


class DomainError(Exception):
    """A failure inside the system that is not the client's fault (answered E503)."""
