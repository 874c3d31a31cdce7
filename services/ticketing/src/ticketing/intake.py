"""Intake from other company systems: batches from `ticketing.intake.v1`."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from helpdesk_contracts import CustomerMessageReceived, EventEnvelope, TicketSubmitted
from helpdesk_runtime.consumer import BatchHandler, Rejection
from helpdesk_runtime.db import Connection
from ticketing import fields_store, tenants
from ticketing.conversations import receive_customer_messages
from ticketing.handlers import open_submitted_tickets
from ticketing.unit_of_work import unit_of_work

_REGISTER = "register it with `python -m ticketing tenants add <id> --name <name>`"
ACCEPTS = frozenset({TicketSubmitted.event_type, CustomerMessageReceived.event_type})


def intake_handler(clock: Callable[[], datetime]) -> BatchHandler:
    """The batch handler the intake consumer runs inside its transaction."""

    async def handle(conn: Connection, batch: Sequence[EventEnvelope[Any]]) -> Sequence[Rejection]:
        registered = await tenants.known(conn, (e.tenant_id for e in batch))
        rejections = [
            Rejection(e.event_id, f"unknown tenant {e.tenant_id!r}: {_REGISTER}")
            for e in batch
            if e.tenant_id not in registered
        ]
        batch = [e for e in batch if e.tenant_id in registered]
        if not batch:
            return rejections
        uow, now = unit_of_work(conn), clock()
        # The two kinds are keyed independently (external id vs thread), so each keeps its
        # own order; nothing orders one kind against the other.
        submissions = [e for e in batch if isinstance(e.payload, TicketSubmitted)]
        messages = [e for e in batch if isinstance(e.payload, CustomerMessageReceived)]
        fields = await fields_store.of_tenants(conn, (e.tenant_id for e in submissions))
        rejections += await open_submitted_tickets(
            submissions, store=uow.events, numbers=uow.numbers, now=now, fields=fields
        )
        rejections += await receive_customer_messages(
            messages, store=uow.events, numbers=uow.numbers, threads=uow.threads, now=now
        )
        return rejections

    return handle
