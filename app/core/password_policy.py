"""The one password policy (NIST SP 800-63B), used by every place that sets a password.

At least 15 and at most 128 code points after NFKC normalisation, never truncated; no
composition rules; refused when it is a common password or contains the login, a name, the
e-mail's local part or the brand.
"""

import gzip
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources

from app.core.errors import AppError, FieldError

MIN_LENGTH = 15
MAX_LENGTH = 128
# Context words shorter than this would refuse too much ("Al" in "Alpha...").
MIN_CONTEXT_WORD = 3


class PasswordPolicyViolation(AppError):
    """The new password does not meet the policy; `detail` says why."""

    status, code, title = 422, "password_policy", "The password does not meet the policy"


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (Django's 20,000-entry list), lower-cased."""
    data = resources.files("app.core").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip().lower() for line in gzip.decompress(data).decode().splitlines())


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def password_problem(password: str, context_words: Iterable[str | None] = ()) -> str | None:
    """Why `password` is refused, or None if it is acceptable."""
    normalized = unicodedata.normalize("NFKC", password)
    length = len(normalized)
    if length < MIN_LENGTH:
        return f"The password must have at least {MIN_LENGTH} characters."
    if length > MAX_LENGTH:
        return f"The password must have at most {MAX_LENGTH} characters."
    folded = normalized.casefold()
    if folded in common_passwords() or folded.strip() in common_passwords():
        return "The password is on a list of commonly used passwords."
    for word in context_words:
        if word and len(word) >= MIN_CONTEXT_WORD and _fold(word) in folded:
            return (
                "The password must not contain your login ID, your name, your e-mail or the brand."
            )
    return None


def check_new_password(
    password: str, context_words: Iterable[str | None] = (), *, field: str = "password"
) -> None:
    """Raise PasswordPolicyViolation (422, code `password_policy`) with the reason."""
    problem = password_problem(password, context_words)
    if problem is not None:
        raise PasswordPolicyViolation(
            problem,
            errors=[FieldError(loc=["body", field], msg=problem, type="password_policy")],
        )


def context_words_for(
    *,
    login: str | None,
    first_name: str | None,
    last_name: str | None,
    email: str | None,
    brand: str | None,
) -> list[str | None]:
    """The words of a user's own context a password must not contain."""
    local_part = email.split("@", 1)[0] if email else None
    brand_words = [brand, *(brand or "").replace(":", " ").split()]
    return [login, first_name, last_name, local_part, *brand_words]
