"""mmsapi.settings: one table of fields, read from the environment by their types."""

from __future__ import annotations

import threading
from dataclasses import fields

import pytest

from mmsapi.settings import (
    Settings,
    SettingsError,
    get_settings,
    scoped_settings,
    settings_from,
    variable_of,
)

DEFAULTS = Settings()


def test_each_field_is_read_from_its_variable_by_its_type() -> None:
    # Given one variable per type, as Lambda gives them (always text)
    environment = {
        "MMS_ACCOUNTS_TABLE": "stack-AccountsTable-1",
        "MMS_MAX_REQUEST_BYTES": "2048",
        "MMS_FETCH_TOTAL_TIMEOUT": "12.5",
        "MMS_ALLOW_LOOPBACK_MEDIA": "true",
    }
    # When the settings are read
    settings = settings_from(environment)
    # Then each value has its field's type
    assert settings.accounts_table == "stack-AccountsTable-1"
    assert settings.max_request_bytes == 2048
    assert settings.fetch_total_timeout == 12.5
    assert settings.allow_loopback_media is True
    # And the fields not given keep their defaults
    assert settings.templates_table == DEFAULTS.templates_table == "mmsapi-templates"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[(word, True) for word in ("1", "on", "t", "true", "y", "yes", "TRUE", "Yes")],
        *[(word, False) for word in ("0", "off", "f", "false", "n", "no", "FALSE", "No")],
    ],
)
def test_bools_take_the_words_pydantic_took(text: str, expected: bool) -> None:
    assert settings_from({"MMS_CARRIER_PROVISIONED": text}).carrier_provisioned is expected


def test_whole_numbers_may_be_written_as_pydantic_accepted_them() -> None:
    assert settings_from({"MMS_SEND_MAX_ATTEMPTS": " 7 "}).send_max_attempts == 7
    assert settings_from({"MMS_STREAM_PART_BYTES": "8_388_608"}).stream_part_bytes == 8_388_608
    assert settings_from({"MMS_VIEW_LINK_DAYS": "30.0"}).view_link_days == 30


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("MMS_ALLOW_LOOPBACK_MEDIA", "maybe"),
        ("MMS_ALLOW_LOOPBACK_MEDIA", ""),
        ("MMS_MAX_REQUEST_BYTES", "1.5"),
        ("MMS_MAX_REQUEST_BYTES", "lots"),
        ("MMS_POSTBACK_TIMEOUT", "ten"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(variable: str, text: str) -> None:
    with pytest.raises(SettingsError) as refused:
        settings_from({variable: text})
    assert variable in str(refused.value)
    assert repr(text) in str(refused.value)


def test_variables_match_in_any_case_and_unknown_ones_are_ignored() -> None:
    settings = settings_from({"mms_media_bucket": "bucket-1", "MMS_NOT_A_SETTING": "x"})
    assert settings.media_bucket == "bucket-1"


def test_the_metrics_namespace_is_powertools_own_variable() -> None:
    # Given Powertools' variable, and the MMS_ name that is not the field's variable
    settings = settings_from(
        {"POWERTOOLS_METRICS_NAMESPACE": "Shop", "MMS_METRICS_NAMESPACE": "ignored"}
    )
    # Then the namespace is Powertools' own
    assert settings.metrics_namespace == "Shop"
    assert variable_of("metrics_namespace") == "POWERTOOLS_METRICS_NAMESPACE"
    assert settings_from({}).metrics_namespace == "MMSApi"


def test_every_field_has_a_type_the_reader_converts() -> None:
    # Given every field's variable set to its own default, written as text
    environment = {variable_of(f.name): str(getattr(DEFAULTS, f.name)) for f in fields(Settings)}
    # Then reading them back gives the defaults (no field has a type the reader lacks)
    assert settings_from(environment) == DEFAULTS


def test_get_settings_reads_the_environment_once_until_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MMS_SENDS_TABLE", "first")
    get_settings.cache_clear()
    try:
        assert get_settings().sends_table == "first"
        monkeypatch.setenv("MMS_SENDS_TABLE", "second")
        assert get_settings().sends_table == "first"  # read once per process
        get_settings.cache_clear()
        assert get_settings().sends_table == "second"
    finally:
        monkeypatch.delenv("MMS_SENDS_TABLE")
        get_settings.cache_clear()


def test_scoped_settings_hold_in_their_block_and_thread_only() -> None:
    # Given one function's own settings in a scope
    own = settings_from({"MMS_SENDS_TABLE": "scoped-sends"})
    seen_by_other_thread: list[str] = []
    with scoped_settings(own):
        # Then get_settings() answers them in the block
        assert get_settings() is own
        # But not in a thread started without the context
        other = threading.Thread(
            target=lambda: seen_by_other_thread.append(get_settings().sends_table)
        )
        other.start()
        other.join()
    # And no longer once the block ends
    assert get_settings() is not own
    assert seen_by_other_thread == [get_settings().sends_table]
    assert seen_by_other_thread != ["scoped-sends"]


def test_settings_are_values() -> None:
    # Settings are shared by every thread of a process: nobody may change them in place
    with pytest.raises(AttributeError):
        DEFAULTS.accounts_table = "other"  # type: ignore[misc]
