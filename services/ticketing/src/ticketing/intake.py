"""Intake from other company systems: `TicketSubmitted` batches from Kafka."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from helpdesk_contracts import EventEnvelope
from helpdesk_runtime.consumer import BatchHandler, Rejection
from helpdesk_runtime.db import Connection
from ticketing.handlers import open_submitted_tickets
from ticketing.numbers import PostgresTicketNumbers
from ticketing.projection import ProjectingEventStore


def submissions_handler(clock: Callable[[], datetime]) -> BatchHandler:
    """The batch handler the intake consumer runs inside its transaction."""

    async def handle(conn: Connection, batch: Sequence[EventEnvelope[Any]]) -> Sequence[Rejection]:
        return await open_submitted_tickets(
            batch,
            store=ProjectingEventStore(conn),
            numbers=PostgresTicketNumbers(conn),
            now=clock(),
        )

    return handle
