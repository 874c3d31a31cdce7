"""Every command of `helpdesk` explains itself: --help answers, with the command's own
docstring, for the groups and every leaf command (an operator finds their way from the
top without reading the code)."""

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from helpdesk_ops.cli import app
from helpdesk_ops.dead_letters import dlq_name, parse_since, source_name
from helpdesk_ops.lag import service_of


def _paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command's path, the groups' too (typer's groups have `commands`)."""
    found = [path]
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            found += _paths(sub, (*path, name))
    return found


COMMANDS = _paths(typer.main.get_command(app))


def test_the_expected_commands_exist() -> None:
    assert {" ".join(p) for p in COMMANDS} >= {
        "lag", "dead-letters list", "dead-letters redrive", "dead-letters deliveries",
        "tenant create", "sla export", "sla import", "customer erase", "rebuild",
    }  # fmt: skip


def test_rebuild_offers_only_the_services_with_a_rebuild_command() -> None:
    answer = CliRunner().invoke(app, ["rebuild", "notifications"])
    assert answer.exit_code == 2
    assert "'ticketing'" in answer.output
    assert "'sla'" in answer.output


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "helpdesk")
def test_help_works(path: tuple[str, ...]) -> None:
    answer = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert answer.exit_code == 0, answer.output
    assert "Usage:" in answer.output
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    first_line = (command.help or "").strip().splitlines()[0].replace("`", "")  # markdown
    assert first_line[:40] in " ".join(answer.output.split()), answer.output


def test_dead_letter_topic_names() -> None:
    assert dlq_name("ticketing.intake.v1") == "ticketing.intake.v1.dlq"
    assert dlq_name("ticketing.intake.v1.dlq") == "ticketing.intake.v1.dlq"
    assert source_name("sla.events.v1.dlq") == "sla.events.v1"


def test_since_takes_durations_and_times() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2d", now) == now - timedelta(days=2)
    assert parse_since("2026-11-30T08:00:00", now) == datetime(2026, 11, 30, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="Invalid isoformat"):
        parse_since("yesterday", now)


def test_groups_belong_to_the_service_they_are_named_after() -> None:
    assert service_of("sla-tickets") == "sla"
    assert service_of("notifications-feedback-events") == "notifications"
    assert service_of("helpdesk-ops-redrive") == "-"
