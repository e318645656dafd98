"""The password rules of account_input (issue 14, item 6 and the password policy):
control characters and all-whitespace passwords are refused with InvalidInput."""

from __future__ import annotations

import pytest

from rag_core.account_input import check_password
from rag_core.errors import InvalidInput


@pytest.mark.parametrize(
    "password",
    [
        "\x00" * 8,
        "abcdefgh\x00",
        "tab\there-long",
        "new\nline-long",
        "bell\x07-long",
        "del\x7f-long",
        "c1\x85control-long",
    ],
)
def test_control_characters_are_refused(password: str) -> None:
    with pytest.raises(InvalidInput, match=r"^password must not contain control characters"):
        check_password(password)


@pytest.mark.parametrize(
    "password", [" " * 8, " " * 20, "\u3000" * 8, "\u00a0 \u2003 \u2009 \u202f "]
)
def test_all_whitespace_passwords_are_refused(password: str) -> None:
    with pytest.raises(InvalidInput, match=r"^password must not be only spaces"):
        check_password(password)


@pytest.mark.parametrize(
    "password",
    ["correct horse", "  leading and trailing  ", "é" * 36, "日本語のパスワード", "emoji 🙂🙂🙂"],
)
def test_ordinary_passwords_pass(password: str) -> None:
    check_password(password)


def test_the_length_rules_still_hold() -> None:
    with pytest.raises(InvalidInput, match="at least 8"):
        check_password("short")
    with pytest.raises(InvalidInput, match="at most 72 bytes"):
        check_password("é" * 37)
