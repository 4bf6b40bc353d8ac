"""Which STOP/START/HELP a received text asks for, and the reply it gets (services/opt_out.py)."""

from __future__ import annotations

import pytest

from mmsapi.admin.changes import parse_change
from mmsapi.models import Account, OptOutSettings
from mmsapi.services.accounts import InvalidInputError
from mmsapi.services.opt_out import MAX_REPLY_CHARS, action_of, inbox_keyword, reply_text
from mmsapi.store.opt_outs import Action


def account(**settings: object) -> Account:
    return Account(account_id="a1", name="Acme", key_hash="h", opt_out=OptOutSettings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (("STOP",), (Action.OPT_OUT, "stop")),
        (("Stop.",), (Action.OPT_OUT, "stop")),
        (("  unsubscribe me please",), (Action.OPT_OUT, "unsubscribe")),
        (("¡QUIT!",), (Action.OPT_OUT, "quit")),
        (("StopAll",), (Action.OPT_OUT, "stopall")),
        (("unstop",), (Action.OPT_IN, "unstop")),
        (("START",), (Action.OPT_IN, "start")),
        (("help?",), (Action.HELP, "help")),
        (("Hi", "stop"), (Action.OPT_OUT, "stop")),  # the subject, then the text
        (("help", "stop"), (Action.HELP, "help")),  # the subject first
        (("REVOKE",), (Action.OPT_OUT, "revoke")),  # FCC 2024: revoke, opt out
        (("OptOut",), (Action.OPT_OUT, "optout")),
        (("ＳＴＯＰ",), (Action.OPT_OUT, "stop")),  # full-width (NFKC)
        (("\u200bSTOP",), (Action.OPT_OUT, "stop")),  # zero-width space pasted in
        (("STOP\u200b",), (Action.OPT_OUT, "stop")),
        (("\ufeffSTOP",), (Action.OPT_OUT, "stop")),  # byte-order mark
        (("🛑STOP",), (Action.OPT_OUT, "stop")),  # emoji around it
        (("🛑 STOP",), (Action.OPT_OUT, "stop")),  # a first word of symbols only
        (("STOP❗️",), (Action.OPT_OUT, "stop")),  # with its variation selector
        (("stop🙏",), (Action.OPT_OUT, "stop")),
        (('"STOP"',), (Action.OPT_OUT, "stop")),
        (("Stop-",), (Action.OPT_OUT, "stop")),
        (("S.T.O.P",), None),  # punctuation inside a word stays
        (("\ufffdstop",), None),  # an unreadable byte is not punctuation
        (("please stop",), None),  # the first word only
        (("stopped",), None),
        (("",), None),
        ((), None),
    ],
)
def test_the_first_word_asks_for_an_action(
    texts: tuple[str, ...], expected: tuple[Action, str] | None
) -> None:
    assert action_of(account(), texts) == expected


def test_the_account_s_own_keywords_are_the_ones_that_count() -> None:
    mine = account(opt_out_keywords=["arret"], opt_in_keywords=[], help_keywords=["aide"])
    assert action_of(mine, ("ARRET",)) == (Action.OPT_OUT, "arret")
    assert action_of(mine, ("aide",)) == (Action.HELP, "aide")
    assert action_of(mine, ("stop",)) is None
    assert action_of(mine, ("start",)) is None


def test_replies_name_the_account_and_are_bounded() -> None:
    assert reply_text(account(), Action.OPT_OUT).startswith("Acme: You are unsubscribed")
    assert "Reply STOP" in reply_text(account(), Action.HELP)
    long = account(help_text="{account} " + "x" * 1000)
    assert len(reply_text(long, Action.HELP)) == MAX_REPLY_CHARS
    assert reply_text(account(opt_in_text=""), Action.OPT_IN) == ""


def test_inbox_keywords_keep_the_account_s_spelling() -> None:
    assert inbox_keyword(("", "YES please"), ["yes", "join"]) == "yes"
    assert inbox_keyword(("yesterday",), ["yes"]) == ""


def test_configured_keywords_are_compared_in_the_same_form() -> None:
    mine = account(opt_out_keywords=["ＡＲＲＥＴ!"], opt_in_keywords=[], help_keywords=[])
    assert action_of(mine, ("arret",)) == (Action.OPT_OUT, "arret")


def test_admin_keywords_are_stored_in_that_form_and_symbols_only_are_refused() -> None:
    change = parse_change({"opt_out_keywords": "ＡＲＲＥＴ!,\u200bhalt,Stop"})
    changed = change(account())
    assert changed.opt_out.opt_out_keywords == ["arret", "halt", "stop"]
    for symbols in ("🛑", "!!!", "\u200b"):
        with pytest.raises(InvalidInputError):
            parse_change({"opt_out_keywords": f"stop,{symbols}"})
