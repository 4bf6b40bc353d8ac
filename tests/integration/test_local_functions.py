"""local.functions: each function runs with its own environment and logs under its name."""

from __future__ import annotations

import io
import json
import logging

from local.functions import LocalFunction, describe_functions
from local.stack import Stack
from mmsapi.settings import Settings, get_settings
from tests.conftest import load_event

DEFAULTS = Settings()  # every field at its default


def _field(variable: str) -> str | None:
    """The Settings field an MMS_ variable sets, if any."""
    name = variable.removeprefix("MMS_").lower()
    return name if variable.startswith("MMS_") and hasattr(DEFAULTS, name) else None


def test_a_function_does_not_see_another_functions_variables(stack: Stack) -> None:
    # Given the template's functions, each with its own environment
    functions = describe_functions(stack, isolated=True)
    view, deliver = functions["ViewFunction"], functions["DeliverFunction"]
    # and the variables the template gives DeliverFunction but not ViewFunction
    theirs = {
        field: value
        for variable, value in deliver.environment.items()
        if (field := _field(variable)) is not None
        and variable not in view.environment
        and value != str(getattr(DEFAULTS, field))
    }
    assert theirs, "the template gives DeliverFunction nothing of its own to test with"
    for field in theirs:
        # When each reads its settings
        with view.scope():
            seen_by_view = getattr(get_settings(), field)
        with deliver.scope():
            seen_by_deliver = getattr(get_settings(), field)
        # Then DeliverFunction sees its value, ViewFunction only the default
        assert seen_by_view == getattr(DEFAULTS, field), field
        assert str(seen_by_deliver) == theirs[field], field


def test_outside_any_function_the_process_environment_is_read(stack: Stack) -> None:
    # Given a function's scope has ended
    view = describe_functions(stack, isolated=True)["ViewFunction"]
    with view.scope():
        inside = get_settings()
    # Then get_settings() answers the process's settings again
    assert get_settings() is not inside


def test_each_log_line_of_an_invocation_names_its_function(stack: Stack) -> None:
    # Given ApiFunction loaded, and the shared logger holding another function's keys
    api: LocalFunction = describe_functions(stack, isolated=True)["ApiFunction"]
    api.load()
    from mmsapi.observability import logger

    logger.append_keys(function_name="mmsapi-test-SomeOtherFunction", service="other")
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    captured = io.StringIO()
    previous = handler.setStream(captured)
    try:
        # When it is invoked
        api.invoke(load_event("api/save-text-current.json"))
    finally:
        handler.setStream(previous)
    # Then every line it logged carries its own name and service
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if line.strip()]
    logged = [line for line in lines if "level" in line]
    assert logged, captured.getvalue()
    assert {line["function_name"] for line in logged} == {api.name}
    assert {line["service"] for line in logged} == {api.environment["POWERTOOLS_SERVICE_NAME"]}
