"""The SendTextMessage request of a fallback SMS or a STOP/HELP reply (carrier/sms.py)."""

from __future__ import annotations

import pytest

from mmsapi.carrier.sms import EndUserMessagingSms
from mmsapi.settings import Settings


@pytest.mark.parametrize(
    ("sender", "origination"),
    [
        ("12125550101", "+12125550101"),  # a long code: E.164, with its '+'
        ("18885550123", "+18885550123"),  # toll-free
        ("447700900123", "+447700900123"),
        ("28444", "28444"),  # a short code goes as it is
        ("12345678", "12345678"),  # 8 digits: still a short code (as MM7's ShortCode)
        ("phone-0123456789abcdef0123456789abcdef", "phone-0123456789abcdef0123456789abcdef"),
        ("pool-0123456789abcdef0123456789abcdef", "pool-0123456789abcdef0123456789abcdef"),
        ("MyBrand", "MyBrand"),  # a sender id
    ],
)
def test_the_origination_identity_is_one_end_user_messaging_takes(
    sender: str, origination: str
) -> None:
    gateway = EndUserMessagingSms(Settings(sms_configuration_set="receipts"))
    request = gateway.request("14082257140", sender, "hi")
    assert request == {
        "DestinationPhoneNumber": "+14082257140",
        "OriginationIdentity": origination,
        "MessageBody": "hi",
        "MessageType": "TRANSACTIONAL",
        "ConfigurationSetName": "receipts",
    }
