"""The one exception this package raises for bad input, with a readable summary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

# A hostile message can produce thousands of errors; the summary ends up in logs and in
# dead-letter headers, so it is capped.
MAX_REPORTED_ERRORS = 10


class ContractError(ValueError):
    """A message or value does not satisfy the contract; `errors` lists "path: message"."""

    def __init__(self, message: str, errors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors

    @classmethod
    def from_validation_error(cls, what: str, exc: ValidationError) -> ContractError:
        """Summarise pydantic's errors as "<what>: path: message; path: message"."""
        errors = tuple(
            f"{_format_location(error['loc'])}: {_message(error)}"
            for error in plain_errors(exc.errors(include_url=False, include_input=False))
        )
        shown = "; ".join(errors[:MAX_REPORTED_ERRORS])
        if len(errors) > MAX_REPORTED_ERRORS:
            shown += f"; and {len(errors) - MAX_REPORTED_ERRORS} more"
        return cls(f"invalid {what}: {shown}", errors)


def plain_errors(errors: Iterable[Any]) -> list[Any]:
    """pydantic's errors (dicts with loc, msg, type) without the noise of personal fields'
    sealed alternative: its errors, and the union member names in the locations."""
    return [
        {**error, "loc": tuple(p for p in error.get("loc", ()) if p not in _UNION_MEMBERS)}
        for error in errors
        if not _sealed_alternative(error)
    ]


def _sealed_alternative(error: Any) -> bool:
    # A personal field is "<plain type> | Sealed": a plain value that fails its own checks
    # also fails to look sealed, which would only be noise next to the real reason.
    if error.get("type") == "value_error":
        return str(error.get("msg")).endswith("personal data is sent in plain text, never sealed")
    return error.get("type") == "string_pattern_mismatch" and str(
        (error.get("ctx") or {}).get("pattern", "")
    ).startswith("^(?:pii:v1:")


_UNION_MEMBERS = frozenset({"constrained-str"})
"""How pydantic names the member of "<plain type> | Sealed" that failed, in a location."""


def _message(error: ErrorDetails) -> str:
    if error["type"] == "timezone_aware":
        return "a datetime needs a UTC offset, e.g. 2025-03-03T09:30:00Z"
    return error["msg"].removeprefix("Value error, ")


def _format_location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            # Dict keys come from the input; keep a hostile key from flooding the summary.
            name = part if len(part) <= 64 else part[:61] + "..."
            path += f".{name}" if path else name
    return path or "envelope"
