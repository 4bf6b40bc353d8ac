"""Served requests leave no API key and no view secret in any log: the local API's
request lines, and the functions' Powertools lines, events logged whole included."""

from __future__ import annotations

import io
import logging
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote

import pytest

from local.functions import LocalFunction, describe_functions
from local.http_api import ApiServer, LocalApi, routes_from_template
from local.stack import Stack, load_template
from mmsapi.observability import logger
from tests.conftest import Client

VIEW_SECRET = "c2VjcmV0LXZpZXctdG9rZW4"


def _logging_its_event(function: LocalFunction) -> None:
    """As POWERTOOLS_LOGGER_LOG_EVENT=true makes inject_lambda_context do: the whole
    event is logged before the handler runs."""
    handler = function.handler
    assert handler is not None

    def logged(event: Any, context: Any) -> Any:
        logger.info(event)
        return handler(event, context)

    function.handler = logged


@pytest.fixture
def served(stack: Stack) -> Iterator[str]:
    """Given the local API over the template's routes, its functions loaded."""
    functions = describe_functions(stack)
    for name in ("ApiFunction", "ViewFunction"):
        functions[name].load()
        _logging_its_event(functions[name])
    api = LocalApi(routes_from_template(load_template()), functions, stack.account_id)
    server = ApiServer(("127.0.0.1", 0), api)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except HTTPError as error:
        return error.code, error.read()


def test_legacy_get_and_view_requests_log_no_key_and_no_secret(
    served: str, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Given every log line captured: the local API's and the functions' Powertools lines
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    powertools = io.StringIO()
    previous = handler.setStream(powertools)
    caplog.set_level(logging.DEBUG, logger="local.http_api")
    try:
        # When a legacy GET carries the key in its query, and a view link is opened
        document = (
            "<REQUEST><ACTION>getMMSTemplates</ACTION>"
            f"<API_KEY>{client.api_key}</API_KEY></REQUEST>"
        )
        status, body = _get(f"{served}/?XMLDATA={quote(document)}")
        viewed, _ = _get(f"{served}/v/4242.{VIEW_SECRET}")
    finally:
        handler.setStream(previous)
    # Then both were served (the key was used)
    assert status == 200
    assert b"Success" in body
    assert viewed in (200, 404)
    # And the logs name the requests, but hold neither the key nor the secret
    # (pytest's handler also gets the Powertools records, unformatted: only the stream
    # the Powertools handler writes is what Lambda logs)
    local = "\n".join(r.getMessage() for r in caplog.records if r.name == "local.http_api")
    lines = local + powertools.getvalue()
    assert "GET /?XMLDATA=" in local
    assert "/v/4242." in local
    assert "rawQueryString" in powertools.getvalue()  # the events were logged whole
    assert client.api_key not in lines
    assert quote(client.api_key) not in lines
    assert VIEW_SECRET not in lines
