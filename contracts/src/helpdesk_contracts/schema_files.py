"""Generate the committed JSON Schema files under contracts/schemas/ from the models.

    python -m helpdesk_contracts.schema_files write contracts     # regenerate
    python -m helpdesk_contracts.schema_files check contracts     # exit 1 if out of date
    python -m helpdesk_contracts.schema_files release contracts   # snapshot, see `releases`

Everything under schemas/ is generated: one file per event type and version holding the
full envelope (payload inlined), and topics.json, the topic registry. `release` copies them
to releases/<version>/ for the version in pyproject.toml, and refuses if they are not
backward compatible with the last release (unless given --allow-breaking).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from helpdesk_contracts.envelope import Event, envelope_model
from helpdesk_contracts.releases import RELEASES_DIR, ReleaseError, contracts_version, record
from helpdesk_contracts.topics import TOPICS, Topic

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX = "urn:helpdesk-contracts:"
SCHEMAS_DIR = "schemas"


def schema_path(topic: Topic, event: type[Event]) -> str:
    """Path of an event's schema file, relative to the contracts directory."""
    return f"{SCHEMAS_DIR}/{topic.name}/{event.event_type}.v{event.schema_version}.schema.json"


def example_path(topic: Topic, event: type[Event]) -> str:
    """Path of an event's example envelope, relative to the contracts directory."""
    return f"examples/{topic.name}/{event.event_type}.v{event.schema_version}.json"


def envelope_schema(topic: Topic, event: type[Event]) -> dict[str, Any]:
    """JSON Schema of the envelope of one event type and version, payload inlined."""
    schema = envelope_model(event).model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs")
    properties: dict[str, Any] = schema["properties"]
    payload_name = properties["payload"]["$ref"].removeprefix("#/$defs/")
    properties["payload"] = defs.pop(payload_name)
    if defs:
        schema["$defs"] = defs
    properties["event_type"] = {**properties["event_type"], "const": event.event_type}
    properties["schema_version"] = {**properties["schema_version"], "const": event.schema_version}
    for name in ("event_type", "schema_version"):
        for constraint in ("pattern", "minimum", "maximum"):
            properties[name].pop(constraint, None)
    if event.requires_aggregate:
        for name in ("aggregate_id", "aggregate_version"):
            _make_required(schema, name)
    path = schema_path(topic, event)
    return {
        **schema,
        "$schema": SCHEMA_DIALECT,
        "$id": ID_PREFIX + path.removeprefix(f"{SCHEMAS_DIR}/"),
        "title": f"{event.event_type} v{event.schema_version}",
        "description": f"Kafka topic {topic.name}, key: {topic.key}. "
        + str(properties["payload"].get("description", "")),
    }


def _make_required(schema: dict[str, Any], name: str) -> None:
    prop = schema["properties"][name]
    (non_null,) = (option for option in prop.pop("anyOf") if option != {"type": "null"})
    prop.pop("default", None)
    schema["properties"][name] = {**prop, **non_null}
    schema["required"] = [*schema["required"], name]


def topics_document() -> dict[str, Any]:
    """The topic registry as JSON, for non-Python tools."""
    return {
        name: {
            "description": topic.description,
            "key": topic.key,
            "partitions": topic.partitions,
            "retention_days": topic.retention_days,
            "sealed": topic.sealed,
            "compatibility": topic.compatibility,
            "producers": list(topic.producers),
            "consumers": list(topic.consumers),
            "dead_letter_topic": f"{name}.dlq",
            "events": [
                {
                    "event_type": event.event_type,
                    "schema_version": event.schema_version,
                    "schema": schema_path(topic, event).removeprefix(f"{SCHEMAS_DIR}/"),
                    **({"personal_fields": list(event.personal_fields)} if topic.sealed else {}),
                }
                for event in topic.event_types
            ],
        }
        for name, topic in TOPICS.items()
    }


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """Every generated file: path relative to the contracts directory -> text."""
    files = {f"{SCHEMAS_DIR}/topics.json": _dump(topics_document())}
    for topic in TOPICS.values():
        for event in topic.event_types:
            files[schema_path(topic, event)] = _dump(envelope_schema(topic, event))
    return dict(sorted(files.items()))


def rendered_schemas() -> dict[str, str]:
    """The generated files by path relative to schemas/, as a release records them."""
    return {path.removeprefix(f"{SCHEMAS_DIR}/"): text for path, text in render().items()}


def check(contracts_dir: Path) -> list[str]:
    """Lines describing each generated file that is missing, differs or is stale."""
    expected = render()
    problems = []
    for path, text in expected.items():
        target = contracts_dir / path
        if not target.is_file():
            problems.append(f"missing: {path}")
        elif target.read_text(encoding="utf-8") != text:
            problems.append(f"differs: {path}")
    for path in sorted(_existing(contracts_dir) - expected.keys()):
        problems.append(f"stale: {path}")
    return problems


def write(contracts_dir: Path) -> list[str]:
    """Bring the generated files up to date; return lines describing what changed."""
    problems = check(contracts_dir)
    expected = render()
    for line in problems:
        kind, path = line.split(": ", 1)
        target = contracts_dir / path
        if kind == "stale":
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(expected[path], encoding="utf-8")
    return problems


def release(contracts_dir: Path, *, allow_breaking: bool = False) -> str:
    """Record the schemas as the release in pyproject.toml; a line saying what was done."""
    if check(contracts_dir):
        raise ReleaseError(f"the schema files are out of date; run: {_PROG} write {contracts_dir}")
    version = contracts_version(contracts_dir)
    where = f"{RELEASES_DIR}/{version}/"
    if record(contracts_dir, version, rendered_schemas(), allow_breaking=allow_breaking):
        return f"recorded: {where}"
    return f"unchanged: {where} is recorded already"


def _existing(contracts_dir: Path) -> set[str]:
    root = contracts_dir / SCHEMAS_DIR
    return {p.relative_to(contracts_dir).as_posix() for p in root.rglob("*") if p.is_file()}


_PROG = "python -m helpdesk_contracts.schema_files"
_DONE = {"missing": "created", "differs": "updated", "stale": "removed"}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `write`, `check` or `release` the generated files of a contracts directory."""
    parser = argparse.ArgumentParser(prog=_PROG, description="Generated JSON Schema files.")
    parser.add_argument("command", choices=["write", "check", "release"])
    parser.add_argument("contracts_dir", type=Path)
    parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="release even if not backward compatible with the last release (a new major "
        "version, or a change shown compatible by hand); say why in CHANGELOG.md",
    )
    args = parser.parse_args(argv)
    if args.command == "release":
        try:
            print(release(args.contracts_dir, allow_breaking=args.allow_breaking))
        except ReleaseError as error:
            print(error, file=sys.stderr)
            return 1
        return 0
    if args.command == "write":
        for line in write(args.contracts_dir):
            kind, path = line.split(": ", 1)
            print(f"{_DONE[kind]}: {path}")
        return 0
    problems = check(args.contracts_dir)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(f"out of date; run: {_PROG} write {args.contracts_dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
