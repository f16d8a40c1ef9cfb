"""Field types of user accounts, shared by every request that carries them."""

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, AwareDatetime, EmailStr, Field, StringConstraints

LOGIN_PATTERN = r"^[A-Za-z0-9._@-]{3,64}$"


def reject_control_characters(value: str) -> str:
    """No control characters (CR/LF included): they would break mail headers and logs."""
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in value):
        raise ValueError("must not contain control characters")
    return value


def _clean_name(value: str) -> str:
    value = reject_control_characters(value).strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def parse_phone(value: str) -> str:
    """E.164; German numbers are accepted in national form (0221 …)."""
    reject_control_characters(value)
    try:
        number = phonenumbers.parse(value, "DE")
    except phonenumbers.NumberParseException as exc:
        raise ValueError("is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range") from exc


def reject_unstorable_text(value: str) -> str:
    """Control characters and lone surrogates cannot be stored (PostgreSQL refuses NUL)."""
    reject_control_characters(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("is not valid text") from exc
    return value


# A moment with a time zone, normalised to UTC (naive times are refused: which zone?).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
SearchText = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(reject_unstorable_text)
]
LoginId = Annotated[
    str,
    StringConstraints(pattern=LOGIN_PATTERN),
    Field(
        description="3-64 letters, digits and . _ - @; unique case-insensitively",
        examples=["Admin.Telefonanlage1"],
    ),
]
PersonName = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_clean_name)
]
Email = Annotated[EmailStr, Field(max_length=254), AfterValidator(reject_control_characters)]
PhoneNumber = Annotated[
    str,
    StringConstraints(min_length=3, max_length=32),
    AfterValidator(parse_phone),
    Field(description="E.164, or a German number in national form", examples=["+4922112345"]),
]
# Long enough for any passphrase; the policy (15-128 after NFKC) says why a password is refused.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
LOGIN_RE = re.compile(LOGIN_PATTERN)
