"""Column types shared by the features' models."""

from enum import Enum as PyEnum
from typing import Any

from sqlalchemy import Enum


def str_enum(enum_class: type[PyEnum], length: int = 32) -> Enum:
    """A string enum stored as VARCHAR of its values (portable, no native ENUM type)."""
    values: Any = lambda members: [member.value for member in members]  # noqa: E731
    return Enum(enum_class, native_enum=False, length=length, values_callable=values)
