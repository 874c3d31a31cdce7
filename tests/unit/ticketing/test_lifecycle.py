"""Every rule of the ticket lifecycle, on the pure aggregate."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    CustomerReplied,
    Priority,
    Requester,
    ResponseSent,
    TicketClosed,
    TicketMerged,
    TicketReopened,
    TicketSolved,
    TicketStatus,
    TicketStatusChanged,
    TicketType,
)
from ticketing.domain import OpenTicket, Ticket, TicketError, link_incident, merge, solve_problem

from support.events import envelopes_of

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
AGENT = Actor(kind=ActorKind.AGENT, id="agent-7")
S = TicketStatus


def new_ticket(number: int = 1, **overrides: Any) -> Ticket:
    cmd = OpenTicket(
        subject="Invoice is wrong",
        description="Charged twice",
        requester=Requester(customer_id="c-1", name="Anna"),
        opened_by=AGENT,
        **overrides,
    )
    ticket = Ticket.open(cmd, ticket_id=uuid4(), tenant_id="acme", number=number, at=AT)
    ticket.changes.clear()
    return ticket


def in_status(status: TicketStatus) -> Ticket:
    ticket = new_ticket()
    if status is S.CLOSED:
        ticket.move_to(S.SOLVED, AGENT, AT)
    if status is not S.NEW:
        ticket.move_to(status, AGENT, AT)
    ticket.changes.clear()
    return ticket


def kinds(ticket: Ticket) -> list[str]:
    return [e.event_type for e in ticket.changes]


class TestStatusRules:
    @pytest.mark.parametrize(
        ("start", "target", "events"),
        [
            (S.NEW, S.OPEN, ["TicketStatusChanged"]),
            (S.NEW, S.PENDING, ["TicketStatusChanged"]),
            (S.OPEN, S.ON_HOLD, ["TicketStatusChanged"]),
            (S.ON_HOLD, S.PENDING, ["TicketStatusChanged"]),
            (S.PENDING, S.SOLVED, ["TicketSolved"]),
            (S.NEW, S.SOLVED, ["TicketSolved"]),
            (S.SOLVED, S.OPEN, ["TicketReopened"]),
            (S.SOLVED, S.PENDING, ["TicketReopened", "TicketStatusChanged"]),
            (S.SOLVED, S.CLOSED, ["TicketClosed"]),
            (S.OPEN, S.OPEN, []),
        ],
    )
    def test_legal_moves_record_the_events_of_their_path(
        self, start: TicketStatus, target: TicketStatus, events: list[str]
    ) -> None:
        ticket = in_status(start)
        ticket.move_to(target, AGENT, AT)
        assert kinds(ticket) == events
        assert ticket.status is target

    @pytest.mark.parametrize(
        ("start", "target", "reason"),
        [
            (S.OPEN, S.NEW, "cannot go back to new"),
            (S.OPEN, S.CLOSED, "only a solved ticket can be closed"),
            (S.PENDING, S.CLOSED, "only a solved ticket can be closed"),
            (S.CLOSED, S.OPEN, "closed"),
            (S.CLOSED, S.SOLVED, "closed"),
        ],
    )
    def test_illegal_moves_are_refused_with_a_reason(
        self, start: TicketStatus, target: TicketStatus, reason: str
    ) -> None:
        ticket = in_status(start)
        with pytest.raises(TicketError, match=reason):
            ticket.move_to(target, AGENT, AT)
        assert ticket.changes == []

    def test_solving_twice_and_reopening_an_unsolved_ticket_are_refused(self) -> None:
        with pytest.raises(TicketError, match="already solved"):
            in_status(S.SOLVED).solve(AGENT, AT)
        with pytest.raises(TicketError, match="only a solved ticket can be reopened"):
            in_status(S.OPEN).reopen(AGENT, AT)

    def test_solved_and_closed_times_follow_the_events(self) -> None:
        ticket = new_ticket()
        ticket.solve(AGENT, AT + timedelta(hours=1), resolution="refunded")
        assert ticket.solved_at == AT + timedelta(hours=1)
        ticket.reopen(AGENT, AT + timedelta(hours=2))
        assert ticket.solved_at is None
        ticket.solve(AGENT, AT + timedelta(hours=3))
        ticket.close(AGENT, AT + timedelta(days=4))
        assert (ticket.status, ticket.closed_at) == (S.CLOSED, AT + timedelta(days=4))


class TestConversation:
    def test_an_agents_first_reply_opens_a_new_ticket(self) -> None:
        ticket = new_ticket()
        ticket.reply(AGENT, "We are on it", message_id=uuid4(), at=AT)
        assert kinds(ticket) == ["ResponseSent", "TicketStatusChanged"]
        assert ticket.status is S.OPEN
        reply = ticket.changes[0]
        assert isinstance(reply, ResponseSent)
        assert reply.channel is Channel.WEB

    def test_a_reply_can_set_the_status_it_leaves_the_ticket_in(self) -> None:
        ticket = in_status(S.OPEN)
        ticket.reply(AGENT, "Can you send the invoice?", message_id=uuid4(), at=AT, then=S.PENDING)
        assert ticket.status is S.PENDING
        ticket = in_status(S.OPEN)
        ticket.reply(AGENT, "Refunded", message_id=uuid4(), at=AT, then=S.SOLVED)
        assert kinds(ticket) == ["ResponseSent", "TicketSolved"]

    @pytest.mark.parametrize(
        ("start", "after", "events"),
        [
            (S.PENDING, S.OPEN, ["CustomerReplied", "TicketStatusChanged"]),
            (S.SOLVED, S.OPEN, ["CustomerReplied", "TicketReopened"]),
            (S.ON_HOLD, S.ON_HOLD, ["CustomerReplied"]),
            (S.NEW, S.NEW, ["CustomerReplied"]),
        ],
    )
    def test_a_customer_reply_moves_a_waiting_ticket_back_to_open(
        self, start: TicketStatus, after: TicketStatus, events: list[str]
    ) -> None:
        ticket = in_status(start)
        ticket.customer_reply(
            "c-1", "Still broken", message_id=uuid4(), channel=Channel.EMAIL, at=AT
        )
        assert (kinds(ticket), ticket.status) == (events, after)
        assert isinstance(ticket.changes[0], CustomerReplied)
        if len(ticket.changes) > 1:
            moved = ticket.changes[1]
            assert isinstance(moved, TicketStatusChanged | TicketReopened)

    def test_a_closed_ticket_takes_no_reply_note_or_change(self) -> None:
        closed = in_status(S.CLOSED)
        with pytest.raises(TicketError, match="opens a follow-up"):
            closed.customer_reply("c-1", "Hello?", message_id=uuid4(), channel=Channel.EMAIL, at=AT)
        attempts: list[Callable[[], None]] = [
            lambda: closed.reply(AGENT, "x", message_id=uuid4(), at=AT),
            lambda: closed.add_note(AGENT, "x", note_id=uuid4(), at=AT),
            lambda: closed.assign("agent-9", None, AGENT, AT),
            lambda: closed.change_priority(Priority.URGENT, AGENT, AT),
            lambda: closed.set_tags(["x"], AGENT, AT),
        ]
        for attempt in attempts:
            with pytest.raises(TicketError, match="closed"):
                attempt()
        assert closed.changes == []

    def test_notes_count_but_are_kept_apart_from_replies(self) -> None:
        ticket = new_ticket()
        ticket.add_note(AGENT, "Customer is a key account", note_id=uuid4(), at=AT)
        assert (ticket.internal_notes, ticket.public_replies, ticket.status) == (1, 0, S.NEW)


class TestProperties:
    def test_assignment_records_the_previous_owner_and_ignores_no_change(self) -> None:
        ticket = new_ticket()
        ticket.assign("agent-9", "billing", AGENT, AT)
        ticket.assign("agent-9", "billing", AGENT, AT)
        ticket.assign(None, "billing", AGENT, AT)
        assert kinds(ticket) == ["TicketAssigned", "TicketAssigned"]
        assert (ticket.assignee_id, ticket.group_id) == (None, "billing")
        last = ticket.changes[-1]
        assert last.previous_assignee_id == "agent-9"  # type: ignore[attr-defined]

    def test_priority_type_tags_fields_and_followers_change_only_when_different(self) -> None:
        ticket = new_ticket()
        ticket.change_priority(Priority.NORMAL, AGENT, AT)
        ticket.change_priority(Priority.URGENT, AGENT, AT)
        ticket.change_type(TicketType.INCIDENT, AGENT, AT)
        ticket.set_tags(["VIP", " billing ", "vip"], AGENT, AT)
        ticket.set_tags(["billing", "vip"], AGENT, AT)
        ticket.update_fields({"order_id": "A-1", "refund": 49.9}, AGENT, AT)
        ticket.update_fields({"refund": None}, AGENT, AT)
        ticket.update_fields({"refund": None}, AGENT, AT)
        ticket.set_followers(["agent-2", "agent-2"], AGENT, AT)
        assert kinds(ticket) == [
            "TicketPriorityChanged",
            "TicketTypeChanged",
            "TicketTagsChanged",
            "TicketFieldsChanged",
            "TicketFieldsChanged",
            "TicketFollowersChanged",
        ]
        assert set(ticket.tags) == {"vip", "billing"}
        assert ticket.custom_fields == {"order_id": "A-1"}
        assert ticket.followers == ("agent-2",)

    def test_a_history_folds_back_into_the_same_state(self) -> None:
        ticket = Ticket.open(
            OpenTicket(
                subject="s", description="d", requester=Requester(customer_id="c"), opened_by=AGENT
            ),
            ticket_id=uuid4(),
            tenant_id="acme",
            number=5,
            at=AT,
        )
        ticket.assign("agent-9", None, AGENT, AT)
        ticket.reply(AGENT, "hi", message_id=uuid4(), at=AT, then=S.PENDING)
        ticket.set_tags(["a"], AGENT, AT)
        ticket.update_fields({"k": 1}, AGENT, AT)
        rebuilt = Ticket.from_history(envelopes_of(ticket, AT))
        assert rebuilt is not None
        assert {**vars(rebuilt), "changes": []} == {**vars(ticket), "changes": []}


class TestRelations:
    def test_merging_closes_the_duplicate_and_records_both_sides(self) -> None:
        duplicate, target = new_ticket(1), new_ticket(2)
        merge(duplicate, target, AGENT, AT)
        assert kinds(duplicate) == ["TicketMerged", "TicketClosed"]
        assert kinds(target) == ["DuplicateMerged"]
        assert duplicate.status is S.CLOSED
        assert duplicate.merged_into == target.id
        assert target.duplicates == (duplicate.id,)
        closing = duplicate.changes[1]
        assert isinstance(closing, TicketClosed)
        assert closing.reason == "merged into #2"
        assert isinstance(duplicate.changes[0], TicketMerged)

    def test_merge_refusals(self) -> None:
        a = new_ticket()
        with pytest.raises(TicketError, match="itself"):
            merge(a, a, AGENT, AT)
        with pytest.raises(TicketError, match="closed"):
            merge(new_ticket(), in_status(S.CLOSED), AGENT, AT)
        with pytest.raises(TicketError, match="closed"):
            merge(in_status(S.CLOSED), new_ticket(), AGENT, AT)

    def test_solving_a_problem_solves_its_open_incidents_and_tells_each_requester(self) -> None:
        problem = new_ticket(100, type=TicketType.PROBLEM)
        incidents = [new_ticket(n, type=TicketType.INCIDENT) for n in (101, 102, 103)]
        for incident in incidents:
            link_incident(incident, problem, AGENT, AT)
        link_incident(incidents[0], problem, AGENT, AT)  # linking again changes nothing
        incidents[2].solve(AGENT, AT)
        for t in (problem, *incidents):
            t.changes.clear()

        changed = solve_problem(problem, incidents, AGENT, AT, message="The billing fault is fixed")
        assert [t.number for t in changed] == [101, 102]
        assert kinds(problem) == ["TicketSolved"]
        for incident in changed:
            assert kinds(incident) == ["ResponseSent", "TicketSolved"]
            reply = incident.changes[0]
            assert isinstance(reply, ResponseSent)
            assert reply.body == "The billing fault is fixed"
            solved = incident.changes[1]
            assert isinstance(solved, TicketSolved)
            assert "#100" in (solved.resolution or "")
        assert incidents[2].changes == []

    def test_problem_links_need_the_right_types_and_one_problem_per_incident(self) -> None:
        problem, other = (
            new_ticket(1, type=TicketType.PROBLEM),
            new_ticket(2, type=TicketType.PROBLEM),
        )
        with pytest.raises(TicketError, match="not an incident"):
            link_incident(new_ticket(3), problem, AGENT, AT)
        with pytest.raises(TicketError, match="not a problem"):
            link_incident(new_ticket(4, type=TicketType.INCIDENT), new_ticket(5), AGENT, AT)
        incident = new_ticket(6, type=TicketType.INCIDENT)
        link_incident(incident, problem, AGENT, AT)
        with pytest.raises(TicketError, match="already linked"):
            link_incident(incident, other, AGENT, AT)
        with pytest.raises(TicketError, match="stay a problem"):
            problem.change_type(TicketType.QUESTION, AGENT, AT)
        with pytest.raises(TicketError, match="not incidents of #2"):
            solve_problem(other, [incident], AGENT, AT, message="x")
