"""SETTINGS.md: every setting of every service, with its default and what it is for, made
from the settings classes themselves (their fields, defaults and the comments above them),
so the page cannot drift from the code: tests/unit/runtime/test_settings_doc.py compares.

    uv run python tests/support/settings_doc.py write   # (make settings)
"""

import ast
import inspect
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

from feedback.config import Settings as FeedbackSettings
from helpdesk_runtime.settings import ServiceSettings
from notifications.config import Settings as NotificationsSettings
from sla.config import Settings as SlaSettings
from ticketing.config import Settings as TicketingSettings

PAGE = Path(__file__).resolve().parents[2] / "SETTINGS.md"
SERVICES: list[tuple[str, type[ServiceSettings]]] = [
    ("ticketing", TicketingSettings),
    ("sla", SlaSettings),
    ("notifications", NotificationsSettings),
    ("feedback", FeedbackSettings),
]
HEADER = """# Settings

Every setting of every service, read from environment variables (names are not case
sensitive) when a process starts. Made from the settings classes by
`uv run python tests/support/settings_doc.py write` (`make settings`); `make test` fails
when this page and the code disagree. Secrets have no default outside `ENVIRONMENT=local`,
where development values stand in (never use them anywhere else).
"""


def _notes(cls: type) -> dict[str, str]:
    """What the comments just above each field (and a docstring just below it) say."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    tree = ast.parse(source)
    body = tree.body[0].body  # type: ignore[attr-defined]
    notes: dict[str, str] = {}
    for index, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        row = node.lineno - 2
        while row >= 0 and lines[row].strip().startswith("#"):
            above.insert(0, lines[row].strip().lstrip("#").strip())
            row -= 1
        following = body[index + 1] if index + 1 < len(body) else None
        if (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):  # fmt: skip
            above.append(" ".join(following.value.value.split()))
        notes[node.target.id] = " ".join(above)
    return notes


def _default(cls: type[ServiceSettings], name: str) -> str:
    field = cls.model_fields[name]
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, SecretStr):  # only the local databases' URLs: no password in them
        value = value.get_secret_value()
    if value is None:
        return "unset"
    if isinstance(value, frozenset | set | list | tuple):
        items = sorted(str(getattr(v, "value", v)) for v in value)
        return f"`{','.join(items)}`" if items else "empty"
    return f"`{getattr(value, 'value', value)}`"


def _table(cls: type[ServiceSettings], names: list[str], notes: dict[str, str]) -> str:
    rows = ["| variable | default | what it is for |", "| --- | --- | --- |"]
    for name in names:
        note = notes.get(name, "").replace("|", "\\|")
        rows.append(f"| `{name.upper()}` | {_default(cls, name)} | {note} |")
    return "\n".join(rows)


def page() -> str:
    parts = [HEADER]
    base = list(ServiceSettings.model_fields)
    parts.append("## Every service (the runtime's)\n\nDefaults shown are the runtime's;"
                 " a service may change one (below).\n")  # fmt: skip
    parts.append(_table(ServiceSettings, base, _notes(ServiceSettings)))
    for service, cls in SERVICES:
        own = [n for n in cls.model_fields if n in cls.__annotations__]
        parts.append(f"\n## {service}\n")
        parts.append(_table(cls, own, _notes(cls)))
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["write"]:
        raise SystemExit(__doc__)
    PAGE.write_text(page(), encoding="utf-8")
    print(f"written: {PAGE.name}")
