"""The README's examples stay true: its JSON envelopes parse and its Python compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpdesk_contracts import TicketSubmitted, parse_envelope

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parents[3] / "contracts" / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_json_examples_are_valid_envelopes() -> None:
    (intake,) = blocks("json")
    assert isinstance(parse_envelope(intake).payload, TicketSubmitted)


@pytest.mark.parametrize("source", blocks("python"))
def test_python_examples_compile(source: str) -> None:
    compile(source, "README.md", "exec")
