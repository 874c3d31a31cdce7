"""What a command works with, bound to one database transaction; built here and only here.

Two persistence styles, each for a reason:
- **ports** (an ABC, a PostgreSQL adapter and an in-memory fake) for what the command
  handlers depend on: the event store, ticket numbers and threads. The handlers hold the
  business rules, so they are unit-tested on the fakes;
- **query modules** (`fields_store`, `groups_store`, `macros_store`, `tenants`, `queries`):
  plain functions over a connection, for configuration tables and read models that routes
  use directly and that are tested against PostgreSQL. A port with a single adapter would
  be ceremony.
The ticket list is neither: it is an inline projection the event store runs on append.
"""

from dataclasses import dataclass

from helpdesk_runtime.db import Connection
from helpdesk_runtime.eventstore import EventStore, PostgresEventStore
from helpdesk_runtime.personal_data import SubjectKeys
from ticketing import projection
from ticketing.numbers import PostgresTicketNumbers, TicketNumbers
from ticketing.threads import PostgresThreads, Threads


@dataclass(frozen=True)
class UnitOfWork:
    """The ports of one transaction; `conn` for the query modules used alongside."""

    conn: Connection
    events: EventStore
    numbers: TicketNumbers
    threads: Threads
    keys: SubjectKeys
    """The data subjects' keys the events are sealed with (erasure destroys them)."""


def unit_of_work(conn: Connection, keys: SubjectKeys) -> UnitOfWork:
    """The ports over `conn`, whose transaction the caller owns; `keys` seal and open the
    personal data in the events."""
    return UnitOfWork(
        conn=conn,
        events=PostgresEventStore(conn, projections=projection.PROJECTIONS, keys=keys),
        numbers=PostgresTicketNumbers(conn),
        threads=PostgresThreads(conn),
        keys=keys,
    )
