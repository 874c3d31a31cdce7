"""Compatibility of the current schemas with the last release, in both directions.

`breaking_changes(released, current)` compares two sets of generated schema files, a release
snapshot (see `releases`) and the current ones. For every topic the release declares
`backward`:
- a reader built on the current schemas reads every old message (Confluent Schema
  Registry's BACKWARD mode): every message valid under a released event schema must still
  be valid under the current schema of that event type and version;
- a reader built on the release reads what the current producers write, as far as fields
  go: a field the released schema requires must still be required, or older consumers
  refuse the new messages (a field removed or renamed, or made optional).

What older readers refuse although it is structurally additive, a new enum value or a
relaxed limit, is allowed and documented as "upgrade the consumers first" (README).

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
_REQUIRED_NOW = "required now"
_NO_LONGER_REQUIRED = "no longer required (removed, renamed or optional): older readers need it"

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
            old, new = released[event["schema"]], current[schema]
            for path, reason in schema_breaks(old, new):
                yield BreakingChange(name, label, path, reason)
            # The other way round, only what older readers require: "required now" there
            # means the current schema lets a message lack what the release requires.
            for path, reason in schema_breaks(new, old):
                if reason.startswith(_REQUIRED_NOW):
                    yield BreakingChange(name, label, path, _NO_LONGER_REQUIRED)
