"""Backward compatibility: can a reader built on the current schemas read every old message?

`breaking_changes(released, current)` compares two sets of generated schema files, a release
snapshot (see `releases`) and the current ones, as Confluent Schema Registry's BACKWARD mode
does: for every topic the release declares `backward`, every message valid under a released
event schema must still be valid under the current schema of that event type and version.

Breaking, besides what `subschema.schema_breaks` finds inside an event's schema:
- a topic removed, or its compatibility lowered from `backward`;
- an event type (and version) removed from its topic, or moved to another.

Adding a topic, or an event type or version to a topic, is not breaking. Keys and partition
counts are not schemas and are not compared.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from helpdesk_contracts.subschema import schema_breaks

TOPICS_FILE = "topics.json"

Schemas = Mapping[str, Any]
"""Parsed schema files by path relative to the schemas directory, "topics.json" included."""


@dataclass(frozen=True, slots=True)
class BreakingChange:
    """A change that a reader built on the current schemas could not cope with."""

    topic: str
    event: str | None
    """"TicketOpened v1", or None for the topic itself."""
    path: str
    """Dotted path into the envelope, e.g. "payload.requester.email"; "" for the whole."""
    reason: str

    def __str__(self) -> str:
        return ": ".join(filter(None, [self.topic, self.event, self.path, self.reason]))


def breaking_changes(released: Schemas, current: Schemas) -> list[BreakingChange]:
    """What in `current` breaks readers of `released`, topic by topic and event by event."""
    return list(_breaking_changes(released, current))


def _breaking_changes(released: Schemas, current: Schemas) -> Iterator[BreakingChange]:
    topics = current[TOPICS_FILE]
    for name, topic in released[TOPICS_FILE].items():
        if topic["compatibility"] != "backward":
            continue
        if name not in topics:
            yield BreakingChange(name, None, "", "topic removed")
            continue
        if topics[name]["compatibility"] != "backward":
            lowered = f"compatibility lowered from backward to {topics[name]['compatibility']}"
            yield BreakingChange(name, None, "", lowered)
        schemas = {
            (e["event_type"], e["schema_version"]): e["schema"] for e in topics[name]["events"]
        }
        for event in topic["events"]:
            label = f"{event['event_type']} v{event['schema_version']}"
            schema = schemas.get((event["event_type"], event["schema_version"]))
            if schema is None:
                yield BreakingChange(name, label, "", "event type removed from the topic")
                continue
            for path, reason in schema_breaks(released[event["schema"]], current[schema]):
                yield BreakingChange(name, label, path, reason)
