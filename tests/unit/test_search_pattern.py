"""The prompt search's literal pattern: any user text becomes a pattern that matches exactly that
text, with nothing a regular-expression engine could read as an operator."""

from __future__ import annotations

import re

import pytest

from genhub.taskstore.mongo_task_repository import literal_pattern

SAMPLES = [
    "可爱的猫",
    "red fox",
    ".*",
    "(",
    "[",
    "\\",
    "$",
    "(a+)+$",
    "a|b{2}^c?d+e*",
    "#&~-_=!:<>\"'`,;/%@",
    "tab\there\nnew line\r",
    "nul\x00byte\x7f",
    "emoji 🐱 and ΣΊΣΥΦΟΣ",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_the_pattern_matches_the_text_and_only_literally(text: str) -> None:
    pattern = literal_pattern(text)
    assert re.fullmatch(pattern, text)
    assert re.search(pattern, f"before {text} after")
    # Control characters are spelled out: no raw NUL (MongoDB refuses it), no raw newline.
    assert all(ord(c) >= 0x20 and c != "\x7f" for c in pattern)


def test_letters_digits_and_other_scripts_stay_as_they_are() -> None:
    assert literal_pattern("Cat 9 猫 é") == "Cat 9 猫 é"
    assert literal_pattern("a.*b") == "a\\.\\*b"
    assert literal_pattern("\x00") == "\\x00"


@pytest.mark.parametrize(("query", "text"), [(".*", "anything"), ("a.c", "abc"), ("(", "x")])
def test_operators_do_not_operate(query: str, text: str) -> None:
    assert re.search(literal_pattern(query), text) is None
