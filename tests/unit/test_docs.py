"""The reference in docs/ and the README against the code they describe.

Every error code, postback code and action of the code is documented, and nothing
documented is missing from the code; every relative link resolves; the XML examples
are well-formed, and the answer and postback examples are what the code writes.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest
from lxml import etree

from mmsapi.errors import CATALOGUE
from mmsapi.media.types import EXTENSIONS, MIME_TYPES
from mmsapi.models import Dialect, Template, TemplateStatus
from mmsapi.services import announce, inbound, report, sms_inbound, sweep
from mmsapi.services.api import ACTIONS
from mmsapi.services.postback import POSTBACK_FIELDS, build_postback, origin_of
from mmsapi.text import fill_merge_tags
from mmsapi.xml import render
from mmsapi.xml.dialect import ALIASES, canonical, root_dialect, written
from mmsapi.xml.render import Field

ROOT: Final = Path(__file__).resolve().parents[2]
DOCS: Final = ROOT / "docs"
SERVICES: Final = ROOT / "layers/common/mmsapi/services"
# Postback codes the documents list but this implementation never sends (docs say why).
NEVER_SENT: Final = frozenset({"E004"})
# Postback builders -> the position of their code argument.
POSTBACK_BUILDERS: Final = {"send_postback": 1, "announce_send": 2}


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def markdown_files() -> list[Path]:
    top = [ROOT / name for name in ("README.md", "CONTRIBUTING.md", "SECURITY.md", "CHANGELOG.md")]
    return [p for p in top if p.exists()] + sorted(DOCS.glob("*.md"))


# ---- markdown reading --------------------------------------------------------------

_FENCE: Final = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_MARKED: Final = re.compile(r"<!-- (\w+): (\S+)(?: (\S+))? -->\n```xml\n(.*?)^```", re.M | re.S)
_LINK: Final = re.compile(r"\]\(([^)\s]+)\)")
_HEADING: Final = re.compile(r"^#{1,6} (.+?)\s*$", re.MULTILINE)


def code_blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    without_code = _FENCE.sub("", text)
    return {slug(h) for h in _HEADING.findall(without_code)}


def table_rows(text: str) -> Iterator[list[str]]:
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            yield [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def broken_links(path: Path) -> list[str]:
    """The relative links of a markdown file that point at no file, or no heading."""
    text = _FENCE.sub("", read(path))
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        missing_anchor = (
            resolved.exists()
            and bool(anchor)
            and resolved.suffix == ".md"
            and anchor not in anchors(read(resolved))
        )
        if not resolved.exists() or missing_anchor:
            broken.append(target)
    return broken


# ---- error codes ---------------------------------------------------------------------


def documented_errors() -> dict[str, str]:
    """code -> text of the table rows of docs/errors.md (| `E100` | text | when |)."""
    rows = {}
    for cells in table_rows(read(DOCS / "errors.md")):
        match = re.fullmatch(r"`(E\d+)`", cells[0])
        if match and len(cells) == 3:
            rows[match.group(1)] = cells[1]
    return rows


def test_every_catalogue_code_is_documented_with_its_exact_text() -> None:
    # Given the catalogue and the table of docs/errors.md
    documented = documented_errors()
    # Then every code of the catalogue has its row, with the catalogue's text as is
    missing = sorted(set(CATALOGUE) - set(documented))
    assert not missing, f"codes missing from docs/errors.md: {missing}"
    wrong = {code: text for code, text in documented.items() if CATALOGUE.get(code, text) != text}
    assert not wrong, f"texts that differ from errors.py: {wrong}"


def test_every_documented_error_code_is_in_the_catalogue() -> None:
    extra = sorted(set(documented_errors()) - set(CATALOGUE))
    assert not extra, f"docs/errors.md documents codes errors.py does not have: {extra}"


def test_every_error_row_says_when_it_is_answered() -> None:
    rows = [c for c in table_rows(read(DOCS / "errors.md")) if re.fullmatch(r"`E\d+`", c[0])]
    assert all(len(cells) == 3 and len(cells[2]) > 10 for cells in rows), rows


# ---- postback codes ------------------------------------------------------------------


def literal_postback_codes() -> set[str]:
    """Codes given as literals to the postback builders anywhere in services/."""
    found = set()
    for source in SERVICES.glob("*.py"):
        for node in ast.walk(ast.parse(read(source))):
            if not isinstance(node, ast.Call):
                continue
            position = POSTBACK_BUILDERS.get(getattr(node.func, "id", ""))
            if position is None or len(node.args) <= position:
                continue
            code = node.args[position]
            if isinstance(code, ast.Constant):
                found.add(str(code.value))
    return found


def emitted_postback_codes() -> set[str]:
    """Every postback code the code can send: the builders' literals and the tables."""
    template = Template(mms_id=1, account_id="a", name="n", status=TemplateStatus.READY, slides=[])
    tables = {
        str(announce.ready_postback(template).detail["code"]),
        *(code for code, _ in announce.FAILURE_CODES.values()),
        *announce.SEND_FAILURE_CODES.values(),
        *(outcome.code for outcome in report.MM7_OUTCOMES.values()),
        report.SMS_DELIVERED.code,
        report.SMS_FAILED.code,
        *sweep.EXPIRED_CODES.values(),
        inbound.MO_CODE,
        sms_inbound.SMS_MO_CODE,
    }
    return (literal_postback_codes() | tables) - NEVER_SENT


def documented_postback_codes() -> set[str]:
    """The codes of the table under '## Codes' in docs/postbacks.md."""
    section = read(DOCS / "postbacks.md").split("## Codes", 1)[1].split("\n### ", 1)[0]
    codes = set()
    for cells in table_rows(section):
        match = re.fullmatch(r"\[([NE]\d{3})\]\(#[\w-]+\)", cells[0])
        if match:
            codes.add(match.group(1))
    return codes


def test_the_code_scan_finds_the_builders_codes() -> None:
    # The scan must see the literal codes, or the next test would pass on nothing
    assert {"N101", "E101", "E999", "N501", "E501", "N502", "E502"} <= literal_postback_codes()


def test_every_postback_code_the_code_sends_is_documented() -> None:
    missing = sorted(emitted_postback_codes() - documented_postback_codes())
    assert not missing, f"postback codes missing from docs/postbacks.md: {missing}"


def test_every_documented_postback_code_is_sent_or_said_never_sent() -> None:
    extra = documented_postback_codes() - emitted_postback_codes() - NEVER_SENT
    assert not extra, f"docs/postbacks.md lists codes the code never sends: {sorted(extra)}"


# ---- actions -------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["actions.md", "answers.md"])
def test_every_action_of_the_dispatcher_has_its_section(page: str) -> None:
    headings = set(_HEADING.findall(read(DOCS / page)))
    missing = sorted(set(ACTIONS) - headings)
    assert not missing, f"actions without a section in docs/{page}: {missing}"


def names_table(page: str, header: str) -> dict[str, list[str]]:
    """Rows of the table that starts with `header`: first cell -> the other cells."""
    text = read(DOCS / page)
    table = text[text.index(header) :].split("\n\n", 1)[0]
    rows = list(table_rows(table))[1:]
    return {cells[0].strip("`"): [c.strip("`") for c in cells[1:]] for cells in rows}


def test_the_alias_table_is_the_codes() -> None:
    # Given the table of docs/actions.md#names-in-both-dialects
    table = names_table("actions.md", "| current | legacy | also read |")
    # Then it is ALIASES: every name, the name the legacy dialect writes, the others read
    documented = {
        name: (legacy, *filter(None, also.split("`, `"))) for name, (legacy, also) in table.items()
    }
    assert documented == ALIASES


def test_the_postback_fields_table_is_the_codes() -> None:
    # Given the table of docs/postbacks.md#fields, in its order
    table = names_table("postbacks.md", "| field | legacy | in | value |")
    # Then it lists origin, code and POSTBACK_FIELDS in order, each with its legacy name
    assert list(table) == ["origin", "code", *POSTBACK_FIELDS]
    assert all(cells[0] == written(name, Dialect.LEGACY) for name, cells in table.items())


def test_the_media_table_lists_every_extension_and_type() -> None:
    text = read(DOCS / "media.md")
    missing = [f".{e}" for e in EXTENSIONS if f"`.{e}`" not in text]
    missing += [m for m in MIME_TYPES if f"`{m}`" not in text]
    assert not missing, f"docs/media.md does not list: {missing}"


# ---- links ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    # Given a page linking to itself rightly and wrongly, and to a file that is not there
    page = tmp_path / "page.md"
    page.write_text("# Top part\n[a](#top-part) [b](#nowhere) [c](gone.md) [d](page.md#top-part)\n")
    # Then exactly the two bad links are reported
    assert broken_links(page) == ["#nowhere", "gone.md"]


def test_slugs_are_githubs() -> None:
    heading = "Device Discovery: N501, N502, E501, E502"
    assert slug(heading) == "device-discovery-n501-n502-e501-e502"
    assert slug("E002, E003") == "e002-e003"
    assert slug("`saveMMS` and [slides](x.md)") == "savemms-and-slides"


# ---- examples ------------------------------------------------------------------------


def readme_xml() -> list[str]:
    """The README's XML: its xml blocks and the documents sent with `curl -d '...'`."""
    text = read(ROOT / "README.md")
    sent = [m for block in code_blocks(text, "sh") for m in re.findall(r"-d '(.*?)'", block, re.S)]
    return code_blocks(text, "xml") + sent


def test_the_readme_has_a_save_and_a_send_example() -> None:
    actions = [etree.fromstring(x.encode()).findtext("action") for x in readme_xml()]
    assert {"saveMMS", "sendMMS"} <= set(actions)


@pytest.mark.parametrize("index", range(len(readme_xml())))
def test_the_readme_xml_is_well_formed(index: int) -> None:
    etree.fromstring(readme_xml()[index].encode())


# Pages of the reference whose XML blocks are examples or fragments of requests.
REFERENCE_PAGES: Final = (
    "actions.md", "answers.md", "postbacks.md", "merge-tags.md",
)  # fmt: skip


@pytest.mark.parametrize("page", REFERENCE_PAGES)
def test_the_docs_xml_is_well_formed(page: str) -> None:
    for block in code_blocks(read(DOCS / page), "xml"):
        # Fragments (a few elements of a request) are wrapped to be checked.
        etree.fromstring(f"<fragment>{block}</fragment>".encode())


@dataclass(frozen=True)
class Example:
    kind: str  # answer, failure, postback
    name: str  # the action or postback code
    dialect: Dialect
    xml: str


def marked_examples(page: str) -> list[Example]:
    found = []
    for kind, name, dialect, xml in _MARKED.findall(read(DOCS / page)):
        if not dialect:  # <!-- failure: current -->
            name, dialect = "", name
        found.append(Example(kind, name, Dialect(dialect), xml))
    return found


# Canonical names of answers and postbacks: names outside the alias table are found
# by how each dialect writes them (canonical() keeps unknown names as they are).
ANSWER_NAMES: Final = (
    "status", "mms-id", "tracking-id", "to", "from", "status-details", "error-code",
    "error-info", "start-date", "page-number", "items-per-page", "total-results",
    "mms-template", "mms-name", "mms-subject", "date-created", "total-slides", "mms-size",
)  # fmt: skip
KNOWN_NAMES: Final = (*ANSWER_NAMES, "origin", "code", *POSTBACK_FIELDS)


def name_of(tag: str, dialect: Dialect) -> str:
    by_written = {written(name, dialect): name for name in KNOWN_NAMES}
    return by_written.get(tag, canonical(tag))


def fields_of(element: etree._Element, dialect: Dialect) -> list[Field]:
    """The canonical fields of an example element, nested as render takes them."""
    fields: list[Field] = []
    for child in element:
        name = name_of(str(child.tag), dialect)
        kids = list(child)
        fields.append((name, fields_of(child, dialect) if kids else (child.text or "").strip()))
    return fields


def shape(element: etree._Element) -> list[object]:
    return [(c.tag, shape(c) if len(c) else (c.text or "").strip()) for c in element]


def test_the_answer_examples_are_written_as_the_code_writes_them() -> None:
    examples = [e for e in marked_examples("answers.md") if e.kind in ("answer", "failure")]
    assert {e.name for e in examples if e.kind == "answer"} == set(ACTIONS)
    for example in examples:
        given = etree.fromstring(example.xml.encode())
        # The dialect is the root's, as the front door decides it
        assert root_dialect(str(given.tag)) is example.dialect, example
        fields = fields_of(given, example.dialect)
        # Then rendering the same facts in that dialect gives the same document
        written = etree.fromstring(render.render("response", fields, example.dialect))
        assert shape(written) == shape(given), example


def test_the_postback_examples_are_what_the_code_sends() -> None:
    examples = [e for e in marked_examples("postbacks.md") if e.kind == "postback"]
    # Every documented code but the one never sent has an example in both dialects
    expected = {(c, d) for c in documented_postback_codes() - NEVER_SENT for d in Dialect}
    assert {(e.name, e.dialect) for e in examples} == expected
    for example in examples:
        given = etree.fromstring(example.xml.encode())
        fields = dict(fields_of(given, example.dialect))
        assert fields.pop("origin") == origin_of(example.name), example
        assert fields.pop("code") == example.name, example
        # A list field (N401's content) is given as its items' texts, as events hold it
        given_fields = {
            k: [t for _, t in v] if isinstance(v, list) else v for k, v in fields.items()
        }
        detail = {"code": example.name, "fields": given_fields}
        # Then the code builds exactly this document from the same fields
        built = etree.fromstring(build_postback(detail, example.dialect))
        assert shape(built) == shape(given), example


def test_the_merge_tag_example_fills_as_documented() -> None:
    # The example of docs/merge-tags.md, with and without data
    data = {"firstname": "Bill", "pin": "13579"}
    text = read(DOCS / "merge-tags.md")
    assert "`Hello Bill`" in text
    assert "`Your code is 13579.`" in text
    assert fill_merge_tags("Hello {$firstname|there}", data) == "Hello Bill"
    assert fill_merge_tags("Your code is {$pin|on its way}.", data) == "Your code is 13579."
    assert "`Hello there`" in text
    assert "`Your code is on its way.`" in text
    assert fill_merge_tags("Hello {$firstname|there}", {}) == "Hello there"
    assert fill_merge_tags("Your code is {$pin|on its way}.", {}) == "Your code is on its way."
