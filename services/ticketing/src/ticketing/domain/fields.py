"""Custom fields: each tenant defines its fields and their types; values must match."""

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ticketing.domain.ticket import TicketError


class FieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    CHECKBOX = "checkbox"
    DATE = "date"
    DROPDOWN = "dropdown"


class FieldDefinition(BaseModel):
    """One custom field of a tenant, e.g. order_id (text) or plan (dropdown)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    title: str = Field(min_length=1, max_length=100)
    type: FieldType
    options: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _options_only_for_dropdowns(self) -> Self:
        if (self.type is FieldType.DROPDOWN) != bool(self.options):
            raise ValueError("a dropdown needs options, and only a dropdown has them")
        return self


def _fits(definition: FieldDefinition, value: Any) -> bool:
    match definition.type:
        case FieldType.TEXT:
            return isinstance(value, str)
        case FieldType.NUMBER:
            return isinstance(value, int | float) and not isinstance(value, bool)
        case FieldType.CHECKBOX:
            return isinstance(value, bool)
        case FieldType.DATE:
            try:
                date.fromisoformat(value)
            except (TypeError, ValueError):
                return False
            return True
        case FieldType.DROPDOWN:
            return value in definition.options


def check_fields(values: Mapping[str, Any], definitions: Mapping[str, FieldDefinition]) -> None:
    """Refuse unknown fields and values of the wrong type (None, which removes, always fits)."""
    problems = []
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            known = ", ".join(sorted(definitions)) or "none are defined"
            problems.append(f"{key!r} is not a custom field of this tenant ({known})")
        elif value is not None and not _fits(definition, value):
            expected = (
                f"one of {list(definition.options)}"
                if definition.type is FieldType.DROPDOWN
                else f"a {definition.type.value}"
            )
            problems.append(f"{key!r} must be {expected}, not {value!r}")
    if problems:
        raise TicketError("; ".join(problems))
