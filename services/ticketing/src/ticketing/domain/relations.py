"""Decisions that span tickets: merging duplicates, problems and their incidents."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID, uuid5

from helpdesk_contracts import Actor, TicketStatus, TicketType
from ticketing.domain.ticket import Ticket, TicketError


def merge(duplicate: Ticket, target: Ticket, by: Actor, at: datetime) -> None:
    """Merge a duplicate into a target: the duplicate closes, both histories stay readable."""
    if duplicate.id == target.id:
        raise TicketError("a ticket cannot be merged into itself")
    if target.status is TicketStatus.CLOSED:
        raise TicketError(f"ticket #{target.number} is closed; merge into an open ticket")
    if duplicate.incidents or duplicate.problem_id is not None:
        raise TicketError(f"ticket #{duplicate.number} is linked to a problem; unlink it first")
    duplicate.record_merged_into(target, by, at)
    target.record_duplicate(duplicate, by, at)


def link_incident(incident: Ticket, problem: Ticket, by: Actor, at: datetime) -> None:
    """Link an incident to the problem that causes it (the month-start billing fault)."""
    if problem.type is not TicketType.PROBLEM:
        raise TicketError(f"ticket #{problem.number} is a {problem.type}, not a problem")
    if incident.type is not TicketType.INCIDENT:
        raise TicketError(f"ticket #{incident.number} is a {incident.type}, not an incident")
    if incident.problem_id == problem.id:
        return
    if incident.problem_id is not None:
        raise TicketError(f"ticket #{incident.number} is already linked to another problem")
    incident.record_linked_to(problem, by, at)
    problem.record_incident(incident, by, at)


def solve_problem(
    problem: Ticket, incidents: Sequence[Ticket], by: Actor, at: datetime, *, message: str
) -> list[Ticket]:
    """Solve a problem and every open incident linked to it, telling each requester.

    Returns the incidents that changed (already solved or closed ones are left alone).
    """
    if problem.type is not TicketType.PROBLEM:
        raise TicketError(f"ticket #{problem.number} is a {problem.type}, not a problem")
    strangers = [i.number for i in incidents if i.id not in problem.incidents]
    if strangers:
        raise TicketError(f"tickets {strangers} are not incidents of #{problem.number}")
    problem.solve(by, at, resolution=message)
    changed = []
    for incident in incidents:
        if incident.status in (TicketStatus.SOLVED, TicketStatus.CLOSED):
            continue
        message_id = _message_id(problem, incident)
        incident.reply(by, message, message_id=message_id, at=at, then=incident.status)
        incident.solve(by, at, resolution=f"solved with problem #{problem.number}")
        changed.append(incident)
    return changed


def _message_id(problem: Ticket, incident: Ticket) -> UUID:
    # Deterministic, so a retried bulk solve cannot send a requester the message twice.
    return uuid5(problem.id, f"problem-solved:{incident.id}")
