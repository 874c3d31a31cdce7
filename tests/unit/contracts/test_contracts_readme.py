"""The README's examples stay true: its JSON envelopes parse, its Python compiles, and what
its publishing examples send is a valid envelope with the right topic, key and headers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiokafka
import pytest

from helpdesk_contracts import (
    TicketSubmitted,
    kafka_headers,
    kafka_key,
    parse_envelope,
    topic_for,
)

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]
README = (REPO_ROOT / "contracts" / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def python_sources() -> list[str]:
    """The Python blocks, and the Python that sh blocks pipe into `uv run python -`."""
    heredoc = re.compile(r"<<'PY'\n(.*?)^PY$", flags=re.DOTALL | re.MULTILINE)
    return blocks("python") + [code for block in blocks("sh") for code in heredoc.findall(block)]


PUBLISHING = [source for source in python_sources() if "AIOKafkaProducer(" in source]


def test_json_examples_are_valid_envelopes() -> None:
    (intake,) = blocks("json")
    assert isinstance(parse_envelope(intake).payload, TicketSubmitted)


@pytest.mark.parametrize("source", python_sources())
def test_python_examples_compile(source: str) -> None:
    compile(source, "README.md", "exec")


def test_there_is_a_runnable_publishing_example_and_one_using_the_package() -> None:
    assert len(PUBLISHING) == 2
    assert any("127.0.0.1:19092" in source for source in PUBLISHING)  # the local Kafka


@pytest.mark.parametrize("source", PUBLISHING)
def test_publishing_examples_send_a_valid_envelope_with_its_key_and_headers(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []

    class FakeProducer:
        def __init__(self, **config: Any) -> None:
            self.started = False

        async def start(self) -> None:
            self.started = True

        async def send_and_wait(
            self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]
        ) -> None:
            assert self.started
            sent.append((topic, value, key, headers))

        async def stop(self) -> None:
            self.started = False

    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", FakeProducer)
    monkeypatch.chdir(REPO_ROOT)  # the examples read files relative to the repository root
    exec(compile(source, "README.md", "exec"), {"__name__": "__main__"})

    ((topic, value, key, headers),) = sent
    envelope = parse_envelope(value)
    assert topic == topic_for(envelope.event_type).name == "ticketing.intake.v1"
    assert key == kafka_key(envelope)
    assert headers == kafka_headers(envelope)
