"""Backward compatibility: the schemas against the last release, and the rules themselves."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpdesk_contracts.compatibility import Schemas, breaking_changes
from helpdesk_contracts.releases import (
    contracts_version,
    last_release,
    load,
    parse,
    released_versions,
)
from helpdesk_contracts.schema_files import rendered_schemas
from helpdesk_contracts.subschema import schema_breaks

pytestmark = pytest.mark.unit

CONTRACTS_DIR = Path(__file__).resolve().parents[3] / "contracts"
CURRENT = parse(rendered_schemas())
TICKETS = "ticketing.tickets.v2"
OPENED = "ticketing.tickets.v2/TicketOpened.v1.schema.json"
SUBMITTED = "ticketing.intake.v1/TicketSubmitted.v1.schema.json"
CUSTOM_FIELD = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"

Edit = Callable[[dict[str, Any]], object]


def test_the_schemas_are_backward_compatible_with_the_last_release() -> None:
    last = last_release(CONTRACTS_DIR)
    assert last is not None, "no release is recorded under contracts/releases/"
    version, released = last
    changes = breaking_changes(released, CURRENT)
    assert not changes, (
        f"the contracts are not backward compatible with release {version}:\n"
        + "\n".join(f"  {change}" for change in changes)
        + "\npublish a new schema_version or topic instead (contracts/README.md, "
        "'Versioning rules')"
    )


def test_the_last_release_is_not_newer_than_the_package() -> None:
    def key(version: str) -> tuple[int, ...]:
        return tuple(map(int, version.split(".")))

    versions = released_versions(CONTRACTS_DIR)
    assert versions, "no release is recorded under contracts/releases/"
    assert key(versions[-1]) <= key(contracts_version(CONTRACTS_DIR))


def test_every_release_holds_topics_json_and_exactly_the_schemas_it_lists() -> None:
    for version in released_versions(CONTRACTS_DIR):
        schemas = load(CONTRACTS_DIR / "releases" / version)
        listed = {e["schema"] for t in schemas["topics.json"].values() for e in t["events"]}
        assert set(schemas) == listed | {"topics.json"}, version


def changed(edit: Edit, path: str = OPENED) -> Schemas:
    """The current schemas with one file edited in place."""
    schemas = copy.deepcopy(dict(CURRENT))
    edit(schemas[path])
    return schemas


def payload(schema: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = schema["properties"]["payload"]
    return result


def prop(schema: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = payload(schema)["properties"][name]
    return result


def plain(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """A personal field's plain form (its other form is sealed: helpdesk_contracts.pii)."""
    result: dict[str, Any] = prop(schema, name)["anyOf"][0]
    return result


def breaks(schemas: Schemas) -> list[str]:
    return [str(change) for change in breaking_changes(CURRENT, schemas)]


def drop_event(topics: dict[str, Any], topic: str, event_type: str) -> None:
    events = topics[topic]["events"]
    events[:] = [e for e in events if e["event_type"] != event_type]


def require(name: str, schema: dict[str, Any] | None = None) -> Edit:
    def edit(s: dict[str, Any]) -> None:
        if schema is not None:
            payload(s)["properties"][name] = schema
        payload(s)["required"].append(name)

    return edit


OPENED_V1 = f"{TICKETS}: TicketOpened v1"

BREAKING: list[tuple[str, Edit, str]] = [
    (
        "a new required property",
        require("escalated", {"type": "boolean"}),
        f"{OPENED_V1}: payload.escalated: required now: messages valid before may lack it",
    ),
    (
        "an optional property made required",
        require("follow_up_of"),
        f"{OPENED_V1}: payload.follow_up_of: required now: messages valid before may lack it",
    ),
    (
        "a new required envelope field",
        lambda s: s["required"].append("causation_id"),
        f"{OPENED_V1}: causation_id: required now: messages valid before may lack it",
    ),
    (
        "a property removed from a model that forbids additional properties",
        lambda s: (
            payload(s).update(additionalProperties=False),
            payload(s)["properties"].pop("tags"),
        ),
        f"{OPENED_V1}: payload.tags: removed, and the new schema forbids additional properties",
    ),
    (
        "a type narrowed",
        lambda s: prop(s, "number").update(type="string"),
        f"{OPENED_V1}: payload.number: type narrowed: integer no longer accepted",
    ),
    (
        "a nullable property made non-nullable",
        lambda s: payload(s)["properties"].update(
            follow_up_of={"type": "string", "format": "uuid"}
        ),
        f"{OPENED_V1}: payload.follow_up_of: type narrowed: null no longer accepted",
    ),
    (
        "an enum value removed (behind a $ref)",
        lambda s: s["$defs"]["Priority"]["enum"].remove("urgent"),
        f'{OPENED_V1}: payload.priority: enum value "urgent" removed',
    ),
    (
        "an enum where any string was accepted",
        lambda s: prop(s, "subject").update(enum=["Help"]),
        f'{OPENED_V1}: payload.subject: only "Help" accepted now',
    ),
    (
        "a const changed",
        lambda s: s["properties"]["event_type"].update(const="TicketCreated"),
        f'{OPENED_V1}: event_type: value "TicketOpened" no longer accepted '
        '(const is now "TicketCreated")',
    ),
    (
        "maxLength lowered",
        lambda s: plain(s, "subject").update(maxLength=100),
        f"{OPENED_V1}: payload.subject: maxLength lowered from 250 to 100",
    ),
    (
        "minLength raised",
        lambda s: plain(s, "subject").update(minLength=5),
        f"{OPENED_V1}: payload.subject: minLength raised from 1 to 5",
    ),
    (
        "maximum lowered",
        lambda s: prop(s, "number").update(maximum=1000),
        f"{OPENED_V1}: payload.number: maximum lowered from 9223372036854775807 to 1000",
    ),
    (
        "minimum raised",
        lambda s: prop(s, "number").update(minimum=10),
        f"{OPENED_V1}: payload.number: minimum raised from 1 to 10",
    ),
    (
        "an inclusive minimum made exclusive",
        lambda s: prop(s, "number").update(exclusiveMinimum=1),
        f"{OPENED_V1}: payload.number: minimum raised from 1 to 1 (exclusive)",
    ),
    (
        "multipleOf added",
        lambda s: prop(s, "number").update(multipleOf=2),
        f"{OPENED_V1}: payload.number: multipleOf 2 added",
    ),
    (
        "a pattern added",
        lambda s: plain(s, "subject").update(pattern="^[A-Z]"),
        f'{OPENED_V1}: payload.subject: pattern "^[A-Z]" added',
    ),
    (
        "a pattern changed (even one that may accept more)",
        lambda s: s["properties"]["tenant_id"].update(pattern="^[a-z0-9_-]{1,63}$"),
        f'{OPENED_V1}: tenant_id: pattern changed from "^[a-z0-9][a-z0-9_-]{{0,62}}$" '
        'to "^[a-z0-9_-]{1,63}$"',
    ),
    (
        "a format added",
        lambda s: prop(s, "subject").update(format="email"),
        f'{OPENED_V1}: payload.subject: format "email" added',
    ),
    (
        "maxItems lowered",
        lambda s: prop(s, "tags").update(maxItems=5),
        f"{OPENED_V1}: payload.tags: maxItems lowered from 50 to 5",
    ),
    (
        "uniqueItems added",
        lambda s: prop(s, "tags").update(uniqueItems=True),
        f"{OPENED_V1}: payload.tags: uniqueItems added",
    ),
    (
        "list items narrowed",
        lambda s: prop(s, "tags")["items"].update(maxLength=10),
        f"{OPENED_V1}: payload.tags[]: maxLength lowered from 50 to 10",
    ),
    (
        "map values narrowed",
        lambda s: prop(s, "custom_fields")["patternProperties"][CUSTOM_FIELD]["anyOf"].pop(),
        f"{OPENED_V1}: payload.custom_fields[/{CUSTOM_FIELD}/]: "
        "type narrowed: null no longer accepted",
    ),
    (
        "map keys narrowed",
        lambda s: prop(s, "custom_fields")["propertyNames"].update(pattern="^[a-z]+$"),
        f"{OPENED_V1}: payload.custom_fields(names): pattern changed from "
        f'"{CUSTOM_FIELD}" to "^[a-z]+$"',
    ),
    (
        "maxProperties lowered",
        lambda s: prop(s, "custom_fields").update(maxProperties=10),
        f"{OPENED_V1}: payload.custom_fields: maxProperties lowered from 100 to 10",
    ),
    (
        "a keyword the check does not model",
        lambda s: prop(s, "subject").update({"not": {"const": "test"}}),
        f"{OPENED_V1}: payload.subject: not added or changed (not checked: breaking)",
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [c[1:] for c in BREAKING], ids=[c[0] for c in BREAKING]
)
def test_a_breaking_change_is_reported_with_topic_event_and_path(edit: Edit, expected: str) -> None:
    assert breaks(changed(edit)) == [expected]


NO_LONGER = "no longer required (removed, renamed or optional): older readers need it"


def test_a_required_field_removed_renamed_or_made_optional_breaks_older_readers() -> None:
    removed = changed(
        lambda s: (
            payload(s)["properties"].pop("subject"),
            payload(s)["required"].remove("subject"),
        )
    )
    assert breaks(removed) == [f"{OPENED_V1}: payload.subject: {NO_LONGER}"]
    optional = changed(lambda s: payload(s)["required"].remove("requester"))
    assert breaks(optional) == [f"{OPENED_V1}: payload.requester: {NO_LONGER}"]
    envelope = changed(lambda s: s["required"].remove("correlation_id"))
    assert breaks(envelope) == [f"{OPENED_V1}: correlation_id: {NO_LONGER}"]


def test_a_changed_default_is_breaking() -> None:
    schemas = changed(lambda s: prop(s, "priority").update(default="low"), SUBMITTED)
    assert breaks(schemas) == [
        'ticketing.intake.v1: TicketSubmitted v1: payload.priority: default changed from "normal" '
        'to "low": old messages would read differently'
    ]


def test_an_enum_value_removed_is_reported_wherever_the_enum_is_used() -> None:
    schemas = changed(lambda s: s["$defs"]["Channel"]["enum"].remove("phone"))
    assert breaks(schemas) == [
        f'{OPENED_V1}: payload.channel: enum value "phone" removed',
        f'{OPENED_V1}: payload.requester.preferred_channel: enum value "phone" removed',
    ]


def test_an_event_type_removed_from_a_topic() -> None:
    schemas = changed(lambda t: drop_event(t, TICKETS, "TicketClosed"), "topics.json")
    assert breaks(schemas) == [f"{TICKETS}: TicketClosed v1: event type removed from the topic"]


def test_an_event_version_replaced_by_another() -> None:
    def bump(topics: dict[str, Any]) -> None:
        topics[TICKETS]["events"][0]["schema_version"] = 2

    schemas = changed(bump, "topics.json")
    assert breaks(schemas) == [f"{TICKETS}: TicketOpened v1: event type removed from the topic"]


def test_a_topic_removed_or_no_longer_backward() -> None:
    assert breaks(changed(lambda t: t.pop("feedback.received.v1"), "topics.json")) == [
        "feedback.received.v1: topic removed"
    ]
    lowered = changed(lambda t: t[TICKETS].update(compatibility="none"), "topics.json")
    assert breaks(lowered) == [f"{TICKETS}: compatibility lowered from backward to none"]


def test_an_edited_if_then_rule_is_breaking() -> None:
    def narrow(schema: dict[str, Any]) -> None:
        payload(schema)["allOf"][0]["then"]["properties"]["score"]["maximum"] = 4

    schemas = changed(narrow, "feedback.received.v1/FeedbackReceived.v1.schema.json")
    assert breaks(schemas) == [
        "feedback.received.v1: FeedbackReceived v1: payload: then added or changed "
        "(not checked: breaking)"
    ]


def add_event(topics: dict[str, Any]) -> None:
    topics[TICKETS]["events"].append(
        {"event_type": "TicketEscalated", "schema_version": 1, "schema": OPENED}
    )


ADDITIVE: list[tuple[str, Edit, str]] = [
    ("nothing", lambda s: None, OPENED),
    (
        "a new optional property",
        lambda s: payload(s)["properties"].update(
            escalated={"anyOf": [{"type": "boolean"}, {"type": "null"}], "default": None}
        ),
        OPENED,
    ),
    (
        "a new optional envelope field",
        lambda s: s["properties"].update(trace_id={"type": "string", "maxLength": 10}),
        OPENED,
    ),
    ("a widened enum", lambda s: s["$defs"]["Priority"]["enum"].append("critical"), OPENED),
    ("a raised maxLength", lambda s: plain(s, "subject").update(maxLength=500), OPENED),
    ("a lowered minLength", lambda s: plain(s, "subject").pop("minLength"), OPENED),
    ("a pattern removed", lambda s: s["properties"]["tenant_id"].pop("pattern"), OPENED),
    (
        "a property made nullable",
        lambda s: payload(s)["properties"].update(
            subject={"anyOf": [prop(s, "subject"), {"type": "null"}], "default": None}
        ),
        OPENED,
    ),
    ("integer widened to number", lambda s: prop(s, "number").update(type="number"), OPENED),
    (
        "a property removed (readers ignore it)",
        lambda s: payload(s)["properties"].pop("tags"),
        OPENED,
    ),
    ("a description changed", lambda s: prop(s, "subject").update(description="New."), OPENED),
    ("a new event type on a topic", add_event, "topics.json"),
    (
        "a new topic",
        lambda t: t.update({"ticketing.sla.v1": {**t[TICKETS], "events": []}}),
        "topics.json",
    ),
]


@pytest.mark.parametrize(("edit", "path"), [c[1:] for c in ADDITIVE], ids=[c[0] for c in ADDITIVE])
def test_an_additive_change_passes(edit: Edit, path: str) -> None:
    assert breaks(changed(edit, path)) == []


def test_the_topic_promise_is_the_released_one() -> None:
    released = copy.deepcopy(dict(CURRENT))
    released["topics.json"]["feedback.received.v1"]["compatibility"] = "none"
    current = changed(lambda t: t.pop("feedback.received.v1"), "topics.json")
    assert breaking_changes(released, current) == []


class TestSchemaRules:
    """Keywords pydantic does not emit for our models today, checked on small schemas."""

    def test_additional_properties_false_refuses_what_old_writers_could_send(self) -> None:
        old = {"type": "object", "additionalProperties": {"type": "string"}}
        new = {"type": "object", "additionalProperties": False}
        assert schema_breaks(old, new) == [
            ("[*]", "no longer accepted: additional properties forbidden")
        ]

    def test_an_open_model_gains_a_declared_property(self) -> None:
        old = {"type": "object", "properties": {"a": {"type": "string"}}}
        new = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
        assert schema_breaks(old, new) == []
        # But a model that kept extra fields (additionalProperties: true) may have sent "b".
        assert schema_breaks({**old, "additionalProperties": True}, new) == [
            ("b", "type narrowed: array, boolean, null, number, object, string no longer accepted")
        ]

    def test_properties_declared_in_separate_all_of_branches_are_all_sent(self) -> None:
        text = {"type": "string"}
        old = {
            "allOf": [
                {"properties": {"a": text}, "minProperties": 1},
                {"properties": {"p": text}, "minProperties": 2},
                {"additionalProperties": text, "maxProperties": 9},
            ]
        }
        new = {"properties": {"a": text, "p": {"type": "integer"}, "x": {"type": "integer"}}}
        assert schema_breaks(old, new) == [
            ("p", "type narrowed: string no longer accepted"),
            ("x", "type narrowed: string no longer accepted"),
        ]

    def test_an_exclusive_one_of_is_checked_branch_by_branch(self) -> None:
        cat = {"type": "object", "properties": {"kind": {"const": "cat"}}, "required": ["kind"]}
        dog = {"type": "object", "properties": {"kind": {"const": "dog"}}, "required": ["kind"]}
        old = {"oneOf": [cat, dog]}
        assert schema_breaks(old, {"oneOf": [cat, dog, {"type": "string"}]}) == []
        strict_dog = {**dog, "required": ["kind", "name"]}
        assert schema_breaks(old, {"oneOf": [cat, strict_dog]}) == [
            ("name", "required now: messages valid before may lack it")
        ]

    def test_an_overlapping_one_of_must_stay_the_same(self) -> None:
        old = {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]}
        assert schema_breaks(old, copy.deepcopy(old)) == []
        new = {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 4}]}
        assert schema_breaks(old, new) == [("", "oneOf added or changed (not checked: breaking)")]

    def test_recursive_schemas_terminate(self) -> None:
        node = {
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
        }
        old: dict[str, Any] = {"$defs": {"Node": node}, "$ref": "#/$defs/Node"}
        new = copy.deepcopy(old)
        assert schema_breaks(old, new) == []
        new["$defs"]["Node"]["properties"]["children"]["maxItems"] = 2
        assert schema_breaks(old, new) == [("children", "maxItems 2 added")]

    def test_tuples_are_compared_by_position(self) -> None:
        old = {"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "integer"}}
        new = {**old, "prefixItems": [{"type": "string"}, {"type": "number"}]}
        assert schema_breaks(old, new) == []
        assert schema_breaks(new, old) == [("[1]", "type narrowed: number no longer accepted")]

    def test_a_widened_union_passes_and_a_narrowed_one_names_the_lost_type(self) -> None:
        old = {"type": ["string", "integer"]}
        assert schema_breaks(old, {"anyOf": [{"type": "string"}, {"type": "number"}]}) == []
        assert schema_breaks(old, {"type": "string"}) == [
            ("", "type narrowed: integer no longer accepted")
        ]

    def test_enum_values_are_checked_against_new_limits(self) -> None:
        old = {"enum": ["ab", "abcdef", 3]}
        new = {"type": "string", "maxLength": 4}
        assert schema_breaks(old, new) == [
            ("", 'value "abcdef": length out of the new limits'),
            ("", "value 3 no longer accepted: type narrowed to string"),
        ]
