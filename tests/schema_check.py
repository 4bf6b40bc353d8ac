"""Answers and postbacks against the schemas in schemas/, for every test (a pytest plugin).

Every answer and postback is built by `mmsapi.xml.render.render`. At session start
that function is wrapped: each document it returns is validated against
`schemas/<dialect>/answer.rng` or `postback.rng` (compiled once). Most tests never
render a postback (they read the outbox or the bus), so every postback made
(`store.outbox.Postback`, whatever made it) is also rendered in both dialects, as
the postback function would for an account of each, and validated. A document that
does not validate is recorded, not raised where it was made (the front door would
turn the exception into an E503 answer, and a postback worker into a retry), and
fails the test that produced it, in its setup, call or teardown, naming the schema,
the line and the document. A document that cannot be checked (no schema for its root
or dialect, or a postback detail that build_postback refuses) fails its test too:
only tests marked schema_exempt may leave documents unvalidated, and the session
fails if any other document went unvalidated. The terminal summary tells how many
were checked.

The e2e tests talk to the local runtime, another process: there the answers
(`LocalRuntime.post`) and postbacks (`Postbacks.record`, on the postback server's
thread) are validated as they are received, and fail the test running when they
arrive.

tests/conftest.py loads this module with `pytest_plugins`; tests/unit/test_schemas.py
uses `validate`/`problems` directly.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final, cast

import pytest
from lxml import etree

from mmsapi.models import Dialect
from mmsapi.services.postback import build_postback
from mmsapi.store.outbox import Postback
from mmsapi.xml import render as render_module
from mmsapi.xml.render import Field

ROOT: Final = Path(__file__).resolve().parent.parent
SCHEMAS: Final = ROOT / "schemas"
# Root element (canonical name, as render() gets it) -> the schema file's stem.
KINDS: Final[dict[str, str]] = {"response": "answer", "postback": "postback"}
# Grammar formats, in order of preference: file suffix -> compiler.
FORMATS: Final[dict[str, Callable[[etree._ElementTree], etree._Validator]]] = {
    ".rng": etree.RelaxNG,
    ".xsd": etree.XMLSchema,
}
SHOWN_LINES: Final = 40
# A test whose documents are made of made-up values on purpose (to test rendering itself,
# not to stand for anything the API says) says so with @pytest.mark.schema_exempt("why"):
# what it renders is counted as unvalidated.
EXEMPT_MARKER: Final = "schema_exempt"

Render = Callable[[str, Sequence[Field], Dialect], bytes]


def schema_path(dialect: Dialect, kind: str) -> Path | None:
    """schemas/<dialect>/<kind>.rng (or .xsd), if it exists."""
    for suffix in FORMATS:
        path = SCHEMAS / dialect.value / f"{kind}{suffix}"
        if path.is_file():
            return path
    return None


@cache
def grammar(path: Path) -> etree._Validator:
    """The compiled schema at `path` (compiled once per session)."""
    return FORMATS[path.suffix](etree.parse(str(path)))


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _entries(validator: etree._Validator) -> Iterable[Any]:
    """The validator's error log (iterable, though lxml-stubs does not say so)."""
    return cast("Iterable[Any]", validator.error_log)


def problems(document: bytes, path: Path) -> list[str]:
    """Why `document` does not validate against the schema at `path` ([] if it does).

    The document is re-indented first, one element a line, so that the line numbers
    of the messages point at the element at fault (render() writes one line).
    """
    tree = etree.fromstring(document, etree.XMLParser(remove_blank_text=True))
    pretty = etree.tostring(tree, pretty_print=True)
    validator = grammar(path)
    if validator.validate(etree.fromstring(pretty)):
        return []
    lines = pretty.decode("utf-8").splitlines()
    found = [f"{_relative(path)}, line {e.line}: {e.message}" for e in _entries(validator)]
    listing = [f"  {n:>3} {line}" for n, line in enumerate(lines[:SHOWN_LINES], start=1)]
    return [*found, *listing]


def validate(document: bytes, path: Path) -> None:
    """Raise AssertionError naming the schema, the lines at fault and the document."""
    found = problems(document, path)
    assert not found, "\n".join(found)


@dataclass
class Harness:
    """What the wrapped render() saw: counts for the summary, failures for the test."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    original: Render | None = None
    original_init: Callable[..., None] | None = None
    exempt: bool = False  # the running test made its documents up (schema_exempt)
    unchecked: int = 0  # documents outside schema_exempt tests that could not be checked
    e2e_originals: dict[str, Any] = field(default_factory=dict)

    def unvalidated(self, why: str) -> None:
        """A document went unchecked: allowed in a schema_exempt test only."""
        with self.lock:
            self.counts["unvalidated"] += 1
            if not self.exempt:
                self.unchecked += 1
                self.failures.append(f"a document could not be validated: {why}")

    def check(self, root: str, dialect: Dialect, document: bytes) -> None:
        kind = KINDS.get(root)
        path = schema_path(dialect, kind) if kind else None
        if self.exempt or kind is None or path is None:
            self.unvalidated(f"no {dialect.value} schema for <{root}>")
            return
        found = problems(document, path)
        with self.lock:
            self.counts[f"{kind} {dialect.value}"] += 1
            if found:
                heading = f"a {dialect.value}-dialect {kind} does not match its schema:"
                self.failures.append("\n".join([heading, *found]))

    def install(self) -> None:
        if self.original is not None:
            return
        original = render_module.render
        self.original = original

        def checked(root: str, fields: Sequence[Field], dialect: Dialect) -> bytes:
            document = original(root, fields, dialect)
            self.check(root, dialect, document)
            return document

        setattr(render_module, "render", checked)  # noqa: B010 (a module function, for mypy)

        original_init = Postback.__init__
        self.original_init = original_init

        def made(postback: Postback, *args: Any, **kwargs: Any) -> None:
            original_init(postback, *args, **kwargs)
            self.render_postback(postback.detail)

        setattr(Postback, "__init__", made)  # noqa: B010 (mypy refuses a method assignment)

    def check_wire(self, document: bytes) -> None:
        """An answer or postback as the e2e tests receive it over HTTP (from the local
        runtime, another process): its dialect is its root's case."""
        try:
            root = etree.QName(etree.fromstring(document)).localname
        except (etree.XMLSyntaxError, ValueError):
            return  # not XML: not an answer or postback
        if root.lower() in KINDS:
            dialect = Dialect.LEGACY if root.isupper() else Dialect.CURRENT
            self.check(root.lower(), dialect, document)

    def install_e2e(self) -> None:
        """Wrap the e2e helpers that receive answers (LocalRuntime.post) and postbacks
        (Postbacks.record), if the e2e tests were collected."""
        runtime = sys.modules.get("tests.e2e.runtime")
        if runtime is None or self.e2e_originals:
            return
        post, record = runtime.LocalRuntime.post, runtime.Postbacks.record
        self.e2e_originals = {"post": post, "record": record}

        def checked_post(*args: Any, **kwargs: Any) -> bytes:
            data: bytes = post(*args, **kwargs)
            self.check_wire(data)
            return data

        def checked_record(postbacks: Any, request: Any) -> Any:
            response = record(postbacks, request)
            self.check_wire(request.get_data())
            return response

        setattr(runtime.LocalRuntime, "post", checked_post)  # noqa: B010
        setattr(runtime.Postbacks, "record", checked_record)  # noqa: B010

    def render_postback(self, detail: dict[str, Any]) -> None:
        """Render a postback's detail in every dialect (render() validates each).

        A detail that cannot be rendered fails the test that made it (a test that makes
        malformed events on purpose is schema_exempt); the exception is recorded, not
        raised, so that the code under test runs on unchanged.
        """
        for dialect in Dialect:
            try:
                build_postback(detail, dialect)
            except Exception as exc:  # recorded for the test: the harness changes nothing
                self.unvalidated(f"build_postback({detail!r}, {dialect.value}) raised {exc!r}")

    def uninstall(self) -> None:
        if self.original is not None:
            setattr(render_module, "render", self.original)  # noqa: B010
            self.original = None
        if self.original_init is not None:
            setattr(Postback, "__init__", self.original_init)  # noqa: B010
            self.original_init = None
        runtime = sys.modules.get("tests.e2e.runtime")
        if runtime is not None and self.e2e_originals:
            setattr(runtime.LocalRuntime, "post", self.e2e_originals["post"])  # noqa: B010
            setattr(runtime.Postbacks, "record", self.e2e_originals["record"])  # noqa: B010
            self.e2e_originals = {}

    def take_failures(self) -> list[str]:
        with self.lock:
            found, self.failures = self.failures, []
        return found

    def summary(self) -> str | None:
        counts = self.counts
        if not counts:
            return None
        answers = sum(n for k, n in counts.items() if k.startswith("answer "))
        postbacks = sum(n for k, n in counts.items() if k.startswith("postback "))
        per_dialect = ", ".join(
            f"{d.value} {sum(n for k, n in counts.items() if k.endswith(' ' + d.value))}"
            for d in Dialect
        )
        return (
            f"Schemas: {answers} answers and {postbacks} postbacks validated ({per_dialect}), "
            f"{counts['unvalidated']} unvalidated ({self.unchecked} outside schema_exempt tests)"
        )


HARNESS: Final = Harness()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{EXEMPT_MARKER}(reason): the test renders made-up answers or postbacks on purpose; "
        "they are not validated against schemas/",
    )
    HARNESS.install()


def pytest_collection_finish(session: pytest.Session) -> None:
    HARNESS.install_e2e()  # the e2e helpers are imported by now, if e2e tests were collected


def is_exempt(item: pytest.Item) -> bool:
    return item.get_closest_marker(EXEMPT_MARKER) is not None


def pytest_unconfigure(config: pytest.Config) -> None:
    HARNESS.uninstall()


def _fail_on_invalid(when: str) -> None:
    failures = HARNESS.take_failures()
    if failures:
        pytest.fail(
            f"{len(failures)} document(s) made during {when} do not validate:\n"
            + "\n\n".join(failures),
            pytrace=False,
        )


def _phase(item: pytest.Item, when: str) -> Generator[None, Any, Any]:
    # Failures left by a phase that raised, or by a postback that arrived between tests
    # (e2e), are reported by the next phase: never dropped.
    HARNESS.exempt = is_exempt(item)
    try:
        result = yield
    finally:
        HARNESS.exempt = False
    _fail_on_invalid(when)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _phase(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _phase(item, "the test"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _phase(item, "teardown"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A document outside schema_exempt tests that went unchecked fails the run, even one
    # made where no test phase could report it.
    if HARNESS.unchecked and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    line = HARNESS.summary()
    if line is not None:
        terminalreporter.write_line(line)
