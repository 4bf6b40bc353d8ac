"""Every account setting that `mmsapi-admin update` changes: one table, one row each.

A row names its option, parses and validates one value as given on the command line
(`parse`, before anything is read or stored), and applies it to the account as stored
now (`apply`, inside the store's atomic change, so it may run again if another admin
wrote first). Rows apply in table order: `--clear-allow-ip --allow-ip X` replaces the
list, `--remove-shortcode 28444 --add-shortcode 28444:CA` moves a shortcode. After the
last row, `check_account` checks the account as a whole. Anything invalid raises
InvalidInputError and nothing is stored. A new setting is a new row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Generic, TypeVar

from mmsapi.errors import ApiError
from mmsapi.keywords import keyword_form
from mmsapi.media.types import MediaKind
from mmsapi.models import (
    ALL_ACTIONS,
    DEFAULT_CAPS,
    LIMIT_CEILINGS,
    RATE_LIMIT_BOUNDS,
    Account,
    Dialect,
    Limits,
    Shortcode,
)
from mmsapi.numbers import ascii_digits, ascii_int, phone_digits
from mmsapi.services.accounts import (
    InvalidInputError,
    check_actions,
    check_allowlist,
    check_limits,
    check_name,
    check_postback_url,
    check_service_id,
    parse_shortcode,
)
from mmsapi.services.opt_out import MAX_REPLY_CHARS
from mmsapi.services.send import MAX_OPERATOR_ID_DIGITS, recipient

T = TypeVar("T")

# Blocked numbers live in the account item, which every request reads (consistently,
# 4 KB per read unit): a thousand numbers is about 20 KB, far below DynamoDB's 400 KB.
MAX_BLOCKED_NUMBERS: Final = 1000
MAX_LIST_ITEMS: Final = 100  # service-ids, operator-ids, allow-list entries, keywords
MAX_KEYWORD_CHARS: Final = 40
# The least minimum interval but 0 (off): the limiter counts whole milliseconds.
MIN_INTERVAL_FLOOR: Final = 0.001


@dataclass(frozen=True)
class Setting(Generic[T]):
    option: str  # the command-line option, e.g. "--postback-url"
    help: str
    parse: Callable[[str], T]
    apply: Callable[[Account, T], None]
    metavar: str = "VALUE"
    repeat: bool = False  # may be given several times; each value applied in turn
    flag: bool = False  # takes no value (parse gets "")

    @property
    def dest(self) -> str:
        return self.option.removeprefix("--").replace("-", "_")


# ---- parsers: one command-line value, validated ------------------------------------


def _text(check: Callable[[str], None]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        check(raw)
        return raw

    return parse


def _dialect(raw: str) -> Dialect:
    try:
        return Dialect(raw.strip().lower())
    except ValueError:
        raise InvalidInputError(
            f"postback dialect {raw[:40]!r}: one of {', '.join(Dialect)}"
        ) from None


def _comma_list(raw: str) -> list[str]:
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if len(items) > MAX_LIST_ITEMS:
        raise InvalidInputError(f"{len(items)} items: {MAX_LIST_ITEMS} at most")
    return list(dict.fromkeys(items))


def _service_ids(raw: str) -> list[str]:
    ids = _comma_list(raw)
    for service_id in ids:
        check_service_id(service_id)
    return ids


def _operator_ids(raw: str) -> list[str]:
    """As a send's operator-id is checked (services/send.operator_id_for)."""
    ids = _comma_list(raw)
    for operator_id in ids:
        if not ascii_digits(operator_id) or len(operator_id) > MAX_OPERATOR_ID_DIGITS:
            raise InvalidInputError(
                f"operator-id {operator_id[:40]!r}: 1 to {MAX_OPERATOR_ID_DIGITS} ASCII digits"
            )
    return ids


def _actions(raw: str) -> list[str]:
    actions = _comma_list(raw)
    check_actions(actions)
    return actions


def _network(raw: str) -> str:
    return check_allowlist([raw])[0]


def _number(raw: str) -> str:
    """A recipient number in the form a send's `to` takes (services/send.recipient)."""
    try:
        digits, _country = recipient(raw)
    except ApiError:
        raise InvalidInputError(
            f"number {raw[:40]!r}: not a valid international number (country code first)"
        ) from None
    return digits


def _shortcode_code(raw: str) -> str:
    code = raw.strip().partition(":")[0]
    if not ascii_digits(code):
        raise InvalidInputError(f"shortcode {raw[:40]!r}: ASCII digits expected")
    return code


def _keywords(raw: str) -> list[str]:
    """Keywords: single words, kept in the form received words are compared in
    (mmsapi/keywords.py: case, width, the punctuation and emoji around them do not count)."""
    words: list[str] = []
    for given in _comma_list(raw):
        word = keyword_form(given)
        if len(word) > MAX_KEYWORD_CHARS or not word.isprintable() or word.split() != [word]:
            raise InvalidInputError(
                f"keyword {given[:40]!r}: one word of 1 to {MAX_KEYWORD_CHARS} characters"
                " (not only punctuation or symbols)"
            )
        words.append(word)
    return list(dict.fromkeys(words))


def _reply_text(raw: str) -> str:
    """A STOP/START/HELP reply: printable, at most MAX_REPLY_CHARS ('' sends none)."""
    text = " ".join(raw.split())
    if len(text) > MAX_REPLY_CHARS or not text.isprintable():
        raise InvalidInputError(f"reply text: printable, {MAX_REPLY_CHARS} characters at most")
    return text


def _limit(name: str) -> Callable[[str], int]:
    ceiling = LIMIT_CEILINGS[name]

    def parse(raw: str) -> int:
        value = ascii_int(raw.strip(), 1, ceiling)
        if value is None:
            raise InvalidInputError(
                f"{name.replace('_', '-')} {raw[:40]!r}: a whole number from 1 to {ceiling}"
            )
        return value

    return parse


def _max_bytes(raw: str) -> tuple[MediaKind, int]:
    kind_name, _, number = raw.partition("=")
    try:
        kind = MediaKind(kind_name.strip().lower())
    except ValueError:
        raise InvalidInputError(
            f"max-bytes {raw[:40]!r}: KIND=BYTES, KIND one of {', '.join(DEFAULT_CAPS)}"
        ) from None
    value = ascii_int(number.strip(), 1, DEFAULT_CAPS[kind])
    if value is None:
        raise InvalidInputError(
            f"max-bytes {kind}: a whole number of bytes from 1 to {DEFAULT_CAPS[kind]}"
        )
    return kind, value


def _throughput(raw: str) -> tuple[str, int | None]:
    """(action, requests per second), or (action, None) for ACTION=default."""
    action, _, number = raw.partition("=")
    low, high = (int(b) for b in RATE_LIMIT_BOUNDS["throughput"])
    if action.strip() not in ALL_ACTIONS:
        raise InvalidInputError(
            f"throughput {raw[:40]!r}: ACTION=N or ACTION=default, "
            f"ACTION one of {', '.join(ALL_ACTIONS)}"
        )
    if number.strip() == "default":
        return action.strip(), None
    value = ascii_int(number.strip(), low, high)
    if value is None:
        raise InvalidInputError(
            f"throughput {action}: requests per second from {low} to {high}, or default"
        )
    return action.strip(), value


def _min_interval(raw: str) -> float:
    _, high = RATE_LIMIT_BOUNDS["min_interval_seconds"]
    whole, _, fraction = raw.strip().partition(".")
    if not (ascii_digits(whole) and (not fraction or ascii_digits(fraction))):
        raise InvalidInputError(
            f"min-interval {raw[:40]!r}: seconds from {MIN_INTERVAL_FLOOR:g} to {high:g}, "
            "or 0 (off)"
        )
    value = float(raw)
    # Intervals are kept in whole milliseconds: a smaller one would silently be off.
    if value != 0 and not MIN_INTERVAL_FLOOR <= value <= high:
        raise InvalidInputError(
            f"min-interval {raw[:40]!r}: seconds from {MIN_INTERVAL_FLOOR:g} to {high:g}, "
            "or 0 (off)"
        )
    return value


def _daily_quota(raw: str) -> int:
    low, high = (int(b) for b in RATE_LIMIT_BOUNDS["daily_quota"])
    value = ascii_int(raw.strip(), low, high)
    if value is None:
        raise InvalidInputError(f"daily-quota {raw[:40]!r}: requests per day from {low} to {high}")
    return value


def _flag(_raw: str) -> bool:
    return True


# ---- appliers: one value, onto the account as stored now ---------------------------


def _set(field: str) -> Callable[[Account, Any], None]:
    def apply(account: Account, value: Any) -> None:
        setattr(account, field, value)

    return apply


def _set_opt_out(name: str) -> Callable[[Account, Any], None]:
    def apply(account: Account, value: Any) -> None:
        setattr(account.opt_out, name, value)

    return apply


def _set_limit(name: str) -> Callable[[Account, int], None]:
    def apply(account: Account, value: int) -> None:
        setattr(account.limits, name, value)

    return apply


def _set_throughput(account: Account, value: tuple[str, int | None]) -> None:
    action, per_second = value
    if per_second is None:
        account.rate_limits.throughput.pop(action, None)  # DEFAULT_THROUGHPUT again
    else:
        account.rate_limits.throughput[action] = per_second


def _set_rate(name: str) -> Callable[[Account, Any], None]:
    def apply(account: Account, value: Any) -> None:
        setattr(account.rate_limits, name, value)

    return apply


def _set_max_bytes(account: Account, value: tuple[MediaKind, int]) -> None:
    kind, cap = value
    account.limits.max_bytes[kind] = cap


def _add_shortcode(account: Account, given: Shortcode) -> None:
    shortcode = replace(given)  # applied again if another admin wrote first
    kept = [s for s in account.shortcodes if s.code != shortcode.code]
    if shortcode.default:  # one default per country
        for other in kept:
            if other.country == shortcode.country:
                other.default = False
    account.shortcodes = [*kept, shortcode]
    _give_each_country_a_default(account)


def _remove_shortcode(account: Account, code: str) -> None:
    if code not in {s.code for s in account.shortcodes}:
        held = ", ".join(s.code for s in account.shortcodes) or "none"
        raise InvalidInputError(f"shortcode {code}: not one of the account's ({held})")
    account.shortcodes = [s for s in account.shortcodes if s.code != code]
    _give_each_country_a_default(account)


def _give_each_country_a_default(account: Account) -> None:
    """As create_account does: the first shortcode of a country without one is its default."""
    with_default = {s.country for s in account.shortcodes if s.default}
    for shortcode in account.shortcodes:
        if shortcode.country not in with_default:
            shortcode.default = True
            with_default.add(shortcode.country)


def _clear_allowlist(account: Account, _value: bool) -> None:
    account.ip_allowlist = []


def _allow(account: Account, network: str) -> None:
    if network not in account.ip_allowlist:
        account.ip_allowlist = [*account.ip_allowlist, network]


def _block(account: Account, number: str) -> None:
    if number not in {phone_digits(n) for n in account.blocked_numbers}:
        account.blocked_numbers = [*account.blocked_numbers, number]


def _unblock(account: Account, number: str) -> None:
    # Entries stored in another form (spaces, '+') are matched as the send check does.
    account.blocked_numbers = [n for n in account.blocked_numbers if phone_digits(n) != number]


# What each limit of models.LIMIT_CEILINGS bounds, for --help.
_LIMIT_HELP: Final = {
    "max_slides": "slides of an MMS (E225 beyond)",
    "max_text_chars": "characters of a slide's text (E228 beyond)",
    "max_subject_chars": "characters of the subject (cut beyond)",
    "image_budget_bytes": "bytes each stored image rendition is fitted into",
    "image_max_dimension": "pixels of an image rendition's longer side",
    "video_budget_bytes": "bytes each encoded video is fitted into",
    "audio_budget_bytes": "bytes each encoded audio is fitted into",
    "max_media_seconds": "seconds of audio or video kept per slide",
}


def _limit_rows() -> list[Setting[Any]]:
    defaults = Limits()
    return [
        Setting(
            f"--{name.replace('_', '-')}",
            f"{_LIMIT_HELP.get(name, name)}: 1 to {ceiling} (default {getattr(defaults, name)})",
            _limit(name),
            _set_limit(name),
            metavar="N",
        )
        for name, ceiling in LIMIT_CEILINGS.items()
    ]


# STOP/START/HELP settings (account.opt_out): the option's stem, what its keywords do.
_OPT_OUT_ROWS: Final = (
    ("opt-out", "opt a phone out (E114 for sends to it)"),
    ("opt-in", "opt a phone back in"),
    ("help", "ask for the help text"),
)

SETTINGS: Final[tuple[Setting[Any], ...]] = (
    Setting("--name", "the account's name", _text(check_name), _set("name"), "NAME"),
    Setting(
        "--postback-url",
        "http(s) URL of the account's postbacks ('' for none)",
        _text(check_postback_url),
        _set("postback_url"),
        "URL",
    ),
    Setting(
        "--postback-dialect",
        f"dialect of the postbacks: {' or '.join(Dialect)}",
        _dialect,
        _set("postback_dialect"),
        "DIALECT",
    ),
    Setting(
        "--remove-shortcode",
        "stop sending from this shortcode (applied before --add-shortcode)",
        _shortcode_code,
        _remove_shortcode,
        "CODE",
        repeat=True,
    ),
    Setting(
        "--add-shortcode",
        "send from this shortcode, CODE[:COUNTRY[:default]] (e.g. 28444:US); "
        "an existing code is replaced; refused while another account holds it",
        parse_shortcode,
        _add_shortcode,
        "SHORTCODE",
        repeat=True,
    ),
    Setting(
        "--service-id",
        "the default service-id ('' for none)",
        _text(check_service_id),
        _set("default_service_id"),
        "ID",
    ),
    Setting(
        "--service-ids",
        "further service-ids the account may name, comma list ('' for none; E627 for others)",
        _service_ids,
        _set("service_ids"),
        "LIST",
    ),
    Setting(
        "--operator-ids",
        "operator-ids the account may name, comma list ('' for any; E651 for others)",
        _operator_ids,
        _set("operator_ids"),
        "LIST",
    ),
    Setting(
        "--clear-allow-ip",
        "empty the IP allow-list: any address (applied before --allow-ip)",
        _flag,
        _clear_allowlist,
        flag=True,
    ),
    Setting(
        "--allow-ip",
        "allow calls from this address or CIDR (E112 for others once the list has one)",
        _network,
        _allow,
        "CIDR",
        repeat=True,
    ),
    Setting(
        "--actions",
        f"the actions the account may call, comma list of {', '.join(ALL_ACTIONS)} (E107)",
        _actions,
        _set("allowed_actions"),
        "LIST",
    ),
    Setting(
        "--unblock",
        "send to this number again (applied before --block)",
        _number,
        _unblock,
        "NUMBER",
        repeat=True,
    ),
    Setting(
        "--block",
        "refuse sends to this number with E114 (international form, e.g. +14045550100)",
        _number,
        _block,
        "NUMBER",
        repeat=True,
    ),
    Setting(
        "--inbox-keywords",
        "keywords an MO's first word is matched against, comma list ('' for none; docs/inbound.md)",
        _keywords,
        _set("inbox_keywords"),
        "LIST",
    ),
    *(
        Setting(
            f"--{name}-keywords",
            f"keywords that {what}, comma list ('' for none; docs/inbound.md#opt-out-and-help)",
            _keywords,
            _set_opt_out(f"{name.replace('-', '_')}_keywords"),
            "LIST",
        )
        for name, what in _OPT_OUT_ROWS
    ),
    *(
        Setting(
            f"--{name}-text",
            f"the SMS answering {name} keywords; {{account}} is the account's name ('' none)",
            _reply_text,
            _set_opt_out(f"{name.replace('-', '_')}_text"),
            "TEXT",
        )
        for name, _ in _OPT_OUT_ROWS
    ),
    *_limit_rows(),
    Setting(
        "--max-bytes",
        "largest file of a kind, KIND=BYTES (e.g. image=5000000), at most the default",
        _max_bytes,
        _set_max_bytes,
        "KIND=BYTES",
        repeat=True,
    ),
    Setting(
        "--throughput",
        "requests per second of an action, ACTION=N (E113 beyond) or ACTION=default (100)",
        _throughput,
        _set_throughput,
        "ACTION=N",
        repeat=True,
    ),
    Setting(
        "--min-interval",
        "least seconds between two calls of the account (E106 closer; 0 = off, the default)",
        _min_interval,
        _set_rate("min_interval_seconds"),
        "SECONDS",
    ),
    Setting(
        "--daily-quota",
        "requests per UTC day, all actions (E120 beyond; default 1000000)",
        _daily_quota,
        _set_rate("daily_quota"),
        "N",
    ),
)


@dataclass(frozen=True)
class Change:
    """Parsed values, in table order, ready to apply to an account (any number of times)."""

    steps: tuple[tuple[Setting[Any], Any], ...]

    def __call__(self, account: Account) -> Account:
        for setting, value in self.steps:
            setting.apply(account, value)
        check_account(account)
        return account


def parse_change(given: dict[str, Any]) -> Change:
    """The change the options ask for ({dest: value, or values if repeatable, or None});
    InvalidInputError for the first invalid value, or when nothing is asked."""
    steps: list[tuple[Setting[Any], Any]] = []
    for setting in SETTINGS:
        value = given.get(setting.dest)
        if value is None or value is False:
            continue
        raws: Sequence[str] = value if setting.repeat else [value if not setting.flag else ""]
        steps.extend((setting, setting.parse(raw)) for raw in raws)
    if not steps:
        raise InvalidInputError("nothing to change: give at least one option (update --help)")
    return Change(tuple(steps))


def check_account(account: Account) -> None:
    """What holds for the account as a whole, whatever order the options came in."""
    check_limits(account.limits)
    if len(account.blocked_numbers) > MAX_BLOCKED_NUMBERS:
        raise InvalidInputError(
            f"blocked numbers: {MAX_BLOCKED_NUMBERS} at most (the account would have "
            f"{len(account.blocked_numbers)})"
        )
    if len(account.ip_allowlist) > MAX_LIST_ITEMS:
        raise InvalidInputError(f"allow-ip: {MAX_LIST_ITEMS} entries at most")
    keywords = account.opt_out
    sets = (keywords.opt_out_keywords, keywords.opt_in_keywords, keywords.help_keywords)
    shared = (set(sets[0]) & set(sets[1])) | (set(sets[0]) & set(sets[2]))
    shared |= set(sets[1]) & set(sets[2])
    if shared:
        raise InvalidInputError(
            f"keyword {sorted(shared)[0]!r} is in two of opt-out, opt-in and help keywords"
        )
