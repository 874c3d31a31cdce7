"""The ticket aggregate: state folded from its events, and the decisions that make new ones.

Pure code: no I/O, no clock, no ids generated here; callers pass them in. A decision either
records events (in `changes`) or raises `TicketError` with a reason fit to show an agent;
asking for what is already so records nothing.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from helpdesk_contracts import (
    Actor,
    ActorKind,
    AttachmentRef,
    Channel,
    CustomerReplied,
    DuplicateMerged,
    Event,
    EventEnvelope,
    ExternalRef,
    IncidentLinked,
    InternalNoteAdded,
    LinkedToProblem,
    Organisation,
    Priority,
    Requester,
    ResponseSent,
    TicketAssigned,
    TicketClosed,
    TicketFieldsChanged,
    TicketFollowersChanged,
    TicketMerged,
    TicketOpened,
    TicketOrganisationChanged,
    TicketPriorityChanged,
    TicketReopened,
    TicketSolved,
    TicketStatus,
    TicketStatusChanged,
    TicketTagsChanged,
    TicketType,
    TicketTypeChanged,
)
from ticketing.domain import status as statuses


class TicketError(Exception):
    """A command the ticket refuses, with the reason shown to the caller."""


class OpenTicket(BaseModel):
    """Command: open a ticket (from an agent or from another system)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    description: str
    requester: Requester
    priority: Priority = Priority.NORMAL
    channel: Channel = Channel.WEB
    type: TicketType = TicketType.QUESTION
    tags: tuple[str, ...] = ()
    custom_fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    organisation: Organisation | None = None
    external_ref: ExternalRef | None = None
    opened_by: Actor
    follow_up_of: UUID | None = None
    attachments: tuple[AttachmentRef, ...] = ()


@dataclass
class Ticket:
    """A ticket's current state; `changes` holds events recorded but not yet stored."""

    id: UUID
    tenant_id: str
    version: int = 0
    number: int = 0
    subject: str = ""
    description: str = ""
    status: TicketStatus = TicketStatus.NEW
    priority: Priority = Priority.NORMAL
    channel: Channel = Channel.WEB
    type: TicketType = TicketType.QUESTION
    requester: Requester | None = None
    organisation: Organisation | None = None
    external_ref: ExternalRef | None = None
    tags: tuple[str, ...] = ()
    custom_fields: dict[str, Any] = field(default_factory=dict)
    assignee_id: str | None = None
    group_id: str | None = None
    followers: tuple[str, ...] = ()
    follow_up_of: UUID | None = None
    merged_into: UUID | None = None
    duplicates: tuple[UUID, ...] = ()
    problem_id: UUID | None = None
    incidents: tuple[UUID, ...] = ()
    opened_at: datetime | None = None
    updated_at: datetime | None = None
    solved_at: datetime | None = None
    closed_at: datetime | None = None
    public_replies: int = 0
    customer_replies: int = 0
    internal_notes: int = 0
    message_ids: set[UUID] = field(default_factory=set, repr=False)
    changes: list[Event] = field(default_factory=list, repr=False)

    # -- building -------------------------------------------------------------------------

    @classmethod
    def open(
        cls, cmd: OpenTicket, *, ticket_id: UUID, tenant_id: str, number: int, at: datetime
    ) -> "Ticket":
        """A new ticket with its `TicketOpened` recorded."""
        if number < 1:
            raise TicketError("ticket numbers start at 1")
        ticket = cls(id=ticket_id, tenant_id=tenant_id)
        ticket._record(
            TicketOpened(
                number=number,
                subject=cmd.subject,
                description=cmd.description,
                requester=cmd.requester,
                priority=cmd.priority,
                channel=cmd.channel,
                type=cmd.type,
                tags=list(cmd.tags),
                custom_fields=cmd.custom_fields,
                organisation=cmd.organisation,
                external_ref=cmd.external_ref,
                opened_by=cmd.opened_by,
                follow_up_of=cmd.follow_up_of,
                attachments=cmd.attachments,
            ),
            at,
        )
        return ticket

    @classmethod
    def from_history(cls, history: Sequence[EventEnvelope[Any]]) -> "Ticket | None":
        """Rebuild from the stored stream; None when the stream is empty."""
        if not history:
            return None
        first = history[0]
        assert first.aggregate_id is not None
        ticket = cls(id=first.aggregate_id, tenant_id=first.tenant_id)
        for envelope in history:
            ticket._apply(envelope.payload, envelope.occurred_at)
            ticket.version = envelope.aggregate_version or ticket.version + 1
        return ticket

    def pending_versions(self) -> Iterable[tuple[int, Event]]:
        """(version, event) for each recorded change, numbered after the stored version."""
        stored = self.version - len(self.changes)
        return ((stored + i + 1, e) for i, e in enumerate(self.changes))

    # -- conversation ---------------------------------------------------------------------

    def reply(
        self,
        agent: Actor,
        body: str,
        *,
        message_id: UUID,
        at: datetime,
        channel: Channel | None = None,
        then: TicketStatus | None = None,
        attachments: Sequence[AttachmentRef] = (),
    ) -> None:
        """An agent's public reply; a new ticket becomes open unless `then` says otherwise."""
        self._require_changeable()
        self._record(
            ResponseSent(
                message_id=message_id,
                agent_id=agent.id,
                body=body,
                channel=channel or self.channel,
                attachments=tuple(attachments),
            ),
            at,
        )
        target = then or (TicketStatus.OPEN if self.status is TicketStatus.NEW else None)
        if target is not None:
            self.move_to(target, agent, at)

    def customer_reply(
        self, customer_id: str, body: str, *, message_id: UUID, channel: Channel, at: datetime,
        attachments: Sequence[AttachmentRef] = (),
    ) -> None:  # fmt: skip
        """The customer wrote: a pending ticket is open again, a solved one reopens."""
        if self.status is TicketStatus.CLOSED:
            raise TicketError(
                f"ticket #{self.number} is closed; the customer's message opens a follow-up"
            )
        self._record(
            CustomerReplied(
                message_id=message_id,
                customer_id=customer_id,
                body=body,
                channel=channel,
                attachments=tuple(attachments),
            ),
            at,
        )
        customer = Actor(kind=ActorKind.CUSTOMER, id=customer_id)
        if self.status in (TicketStatus.PENDING, TicketStatus.SOLVED):
            self.move_to(TicketStatus.OPEN, customer, at)

    def add_note(
        self, agent: Actor, body: str, *, note_id: UUID, at: datetime,
        attachments: Sequence[AttachmentRef] = (),
    ) -> None:  # fmt: skip
        """An internal note, never shown to the customer."""
        self._require_changeable()
        self._record(InternalNoteAdded(note_id=note_id, agent_id=agent.id, body=body,
                                       attachments=tuple(attachments)), at)  # fmt: skip

    # -- status ---------------------------------------------------------------------------

    def move_to(
        self, target: TicketStatus, by: Actor, at: datetime, *, reason: str | None = None
    ) -> None:
        """Move to any status the rules allow, recording the events the path takes."""
        if target is self.status:
            return
        refusal = statuses.refusal(self.status, target)
        if refusal is not None:
            raise TicketError(refusal)
        if self.status is TicketStatus.SOLVED and target in statuses.SETTABLE:
            self._record(TicketReopened(reopened_by=by, reason=reason), at)  # leaving solved
            if target is TicketStatus.OPEN:
                return
        if target is TicketStatus.SOLVED:
            self._record(TicketSolved(solved_by=by, resolution=reason), at)
        elif target is TicketStatus.CLOSED:
            self._record(TicketClosed(closed_by=by, reason=reason), at)
        else:
            self._record(
                TicketStatusChanged(previous=self.status, status=target, changed_by=by), at
            )

    def solve(self, by: Actor, at: datetime, resolution: str | None = None) -> None:
        if self.status is TicketStatus.SOLVED:
            raise TicketError(f"ticket #{self.number} is already solved")
        self.move_to(TicketStatus.SOLVED, by, at, reason=resolution)

    def reopen(self, by: Actor, at: datetime, reason: str | None = None) -> None:
        if self.status is not TicketStatus.SOLVED:
            raise TicketError(f"only a solved ticket can be reopened; this one is {self.status}")
        self.move_to(TicketStatus.OPEN, by, at, reason=reason)

    def close(self, by: Actor, at: datetime, reason: str | None = None) -> None:
        self.move_to(TicketStatus.CLOSED, by, at, reason=reason)

    # -- properties -----------------------------------------------------------------------

    def assign(
        self, assignee_id: str | None, group_id: str | None, by: Actor, at: datetime
    ) -> None:
        """Set the assignee and/or group (None for both: unassigned)."""
        self._require_changeable()
        if (assignee_id, group_id) == (self.assignee_id, self.group_id):
            return
        self._record(
            TicketAssigned(
                assignee_id=assignee_id,
                group_id=group_id,
                previous_assignee_id=self.assignee_id,
                previous_group_id=self.group_id,
                assigned_by=by,
            ),
            at,
        )

    def change_priority(self, priority: Priority, by: Actor, at: datetime) -> None:
        self._require_changeable()
        if priority is not self.priority:
            self._record(
                TicketPriorityChanged(previous=self.priority, priority=priority, changed_by=by), at
            )

    def change_type(self, ticket_type: TicketType, by: Actor, at: datetime) -> None:
        self._require_changeable()
        if ticket_type is self.type:
            return
        if self.incidents:
            raise TicketError("a problem with linked incidents must stay a problem")
        if self.problem_id is not None:
            raise TicketError("an incident linked to a problem must stay an incident")
        self._record(TicketTypeChanged(previous=self.type, type=ticket_type, changed_by=by), at)

    def set_tags(self, tags: Iterable[str], by: Actor, at: datetime) -> None:
        """Replace the tags (normalised: lower case, trimmed, unique)."""
        self._require_changeable()
        event = TicketTagsChanged(previous=self.tags, tags=tuple(tags), changed_by=by)
        if set(event.tags) != set(self.tags):
            self._record(event, at)

    def update_fields(self, changes: Mapping[str, Any], by: Actor, at: datetime) -> None:
        """Set custom fields; a None value removes the field."""
        self._require_changeable()
        fields = {k: v for k, v in (self.custom_fields | dict(changes)).items() if v is not None}
        if fields != self.custom_fields:
            self._record(
                TicketFieldsChanged(
                    previous=self.custom_fields, custom_fields=fields, changed_by=by
                ),
                at,
            )

    def set_followers(self, followers: Iterable[str], by: Actor, at: datetime) -> None:
        self._require_changeable()
        wanted = tuple(dict.fromkeys(followers))
        if set(wanted) != set(self.followers):
            self._record(
                TicketFollowersChanged(previous=self.followers, followers=wanted, changed_by=by),
                at,
            )

    # -- relations (the other ticket's side is recorded by domain.relations) ---------------

    def record_merged_into(self, target: "Ticket", by: Actor, at: datetime) -> None:
        self._require_changeable()
        self._record(
            TicketMerged(into_ticket_id=target.id, into_number=target.number, merged_by=by), at
        )
        self._record(TicketClosed(closed_by=by, reason=f"merged into #{target.number}"), at)

    def record_duplicate(self, duplicate: "Ticket", by: Actor, at: datetime) -> None:
        self._require_changeable()
        self._record(
            DuplicateMerged(
                duplicate_ticket_id=duplicate.id, duplicate_number=duplicate.number, merged_by=by
            ),
            at,
        )

    def record_linked_to(self, problem: "Ticket", by: Actor, at: datetime) -> None:
        self._require_changeable()
        self._record(LinkedToProblem(problem_id=problem.id, linked_by=by), at)

    def record_incident(self, incident: "Ticket", by: Actor, at: datetime) -> None:
        self._require_changeable()
        self._record(IncidentLinked(incident_id=incident.id, linked_by=by), at)

    def change_organisation(
        self, organisation: Organisation | None, by: Actor, at: datetime
    ) -> bool:
        """The organisation's tier, manager or name changed in the directory (or the ticket
        belongs to another one now); nothing for a closed ticket or an unchanged one."""
        if self.status is TicketStatus.CLOSED or organisation == self.organisation:
            return False
        self._record(
            TicketOrganisationChanged(
                previous=self.organisation, organisation=organisation, changed_by=by
            ),
            at,
        )
        return True

    # -- internals ------------------------------------------------------------------------

    def _require_changeable(self) -> None:
        if self.status is TicketStatus.CLOSED:
            raise TicketError(f"ticket #{self.number} is closed and cannot change")

    def _record(self, event: Event, at: datetime) -> None:
        self._apply(event, at)
        self.version += 1
        self.changes.append(event)

    def _apply(self, event: Event, at: datetime) -> None:
        self.updated_at = at
        match event:
            case TicketOpened():
                self.number = event.number
                self.subject = event.subject
                self.description = event.description
                self.requester = event.requester
                self.priority = event.priority
                self.channel = event.channel
                self.type = event.type
                self.tags = tuple(event.tags)
                self.custom_fields = dict(event.custom_fields)
                self.organisation = event.organisation
                self.external_ref = event.external_ref
                self.follow_up_of = event.follow_up_of
                self.opened_at = at
            case ResponseSent():
                self.public_replies += 1
                self.message_ids.add(event.message_id)
            case CustomerReplied():
                self.customer_replies += 1
                self.message_ids.add(event.message_id)
            case InternalNoteAdded():
                self.internal_notes += 1
            case TicketAssigned():
                self.assignee_id = event.assignee_id
                self.group_id = event.group_id
            case TicketPriorityChanged():
                self.priority = event.priority
            case TicketStatusChanged():
                self.status = event.status
            case TicketSolved():
                self.status = TicketStatus.SOLVED
                self.solved_at = at
            case TicketReopened():
                self.status = TicketStatus.OPEN
                self.solved_at = None
            case TicketClosed():
                self.status = TicketStatus.CLOSED
                self.closed_at = at
            case TicketTypeChanged():
                self.type = event.type
            case TicketTagsChanged():
                self.tags = tuple(event.tags)
            case TicketFieldsChanged():
                self.custom_fields = dict(event.custom_fields)
            case TicketFollowersChanged():
                self.followers = tuple(event.followers)
            case TicketMerged():
                self.merged_into = event.into_ticket_id
            case DuplicateMerged():
                self.duplicates += (event.duplicate_ticket_id,)
            case LinkedToProblem():
                self.problem_id = event.problem_id
            case IncidentLinked():
                self.incidents += (event.incident_id,)
            case TicketOrganisationChanged():
                self.organisation = event.organisation
            case _:
                pass  # events this version does not know about do not change the state
