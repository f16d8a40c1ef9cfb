"""The one password policy, table-driven: lengths, NFKC, common passwords, context words."""

import pytest

from app.core.errors import FieldError
from app.core.password_policy import (
    MAX_LENGTH,
    MIN_LENGTH,
    PasswordPolicyViolation,
    check_new_password,
    common_passwords,
    context_words_for,
    password_problem,
)

CONTEXT = context_words_for(
    login="Admin.Telefonanlage1",
    first_name="Max",
    last_name="Muster",
    email="max.muster@muster-gmbh.de",
    brand="e:service",
)
TOO_SHORT = "at least 15"
TOO_LONG = "at most 128"
COMMON = "commonly used"
CONTEXT_WORD = "must not contain"

CASES = [
    # lengths, counted in code points after NFKC
    ("q" * 14, TOO_SHORT),
    ("kq7 vz3 mw9 tx", TOO_SHORT),
    ("kq7 vz3 mw9 tx2", None),
    ("kq7vz3mw9tx2" + "p" * (MAX_LENGTH - 12), None),
    ("kq7vz3mw9tx2" + "p" * (MAX_LENGTH - 11), TOO_LONG),
    ("ä" * 15, None),  # 15 code points, 30 bytes
    ("😀" * 15, None),
    ("😀" * 14, TOO_SHORT),
    # NFKC: the "ﬁ" ligature is two letters, so 14 typed characters count as 15
    ("\ufb01" + "rtqzvbnmlkjhg", None),
    ("\ufb01" + "rtqzvbnmlkjh", TOO_SHORT),
    # no composition rules: lower case only, digits only, spaces are fine
    ("correcthorsebatterystaple", None),
    ("749261538207461", None),
    ("tiny words make long phrases", None),
    # common passwords (the shipped list), also in another case or full-width
    ("123456789987654321", COMMON),
    ("1q2w3e4r5t6y7u8i9o0p", COMMON),
    ("Friend Of Emily", COMMON),
    # full-width digits, which NFKC folds to ASCII
    ("".join(chr(0xFF10 + int(d)) for d in "123456789987654321"), COMMON),
    # context words: login, names, e-mail local part, brand
    ("my admin.telefonanlage1 login", CONTEXT_WORD),
    ("hello there MAX how are you", CONTEXT_WORD),
    ("the muster family secret", CONTEXT_WORD),
    ("welcome to e:service today", CONTEXT_WORD),
    ("service with a smile please", CONTEXT_WORD),
    ("max.muster went for a walk", CONTEXT_WORD),
]


@pytest.mark.parametrize(("password", "expected"), CASES)
def test_policy(password: str, expected: str | None) -> None:
    problem = password_problem(password, CONTEXT)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert expected in problem


def test_limits_are_nists() -> None:
    assert (MIN_LENGTH, MAX_LENGTH) == (15, 128)


def test_the_shipped_list_is_large_enough() -> None:
    assert len(common_passwords()) >= 10_000


def test_short_context_words_are_ignored() -> None:
    words = context_words_for(login="al", first_name="Al", last_name="Bo", email=None, brand=None)
    assert password_problem("alpha bravo charlie", words) is None


def test_never_truncated() -> None:
    base = "kq7vz3mw9tx2" + "p" * 116
    assert password_problem(base, ()) is None
    assert password_problem(base + "z", ()) is not None


def test_violation_names_the_field() -> None:
    with pytest.raises(PasswordPolicyViolation) as info:
        check_new_password("short", field="new_password")
    assert info.value.status == 422
    assert info.value.code == "password_policy"
    assert info.value.errors == [
        FieldError(loc=["body", "new_password"], msg=str(info.value.detail), type="password_policy")
    ]
