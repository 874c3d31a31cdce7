"""Which tenants' rows a database connection sees: PostgreSQL's row-level security.

Every tenant table has a policy (migrations/tenancy) that shows and accepts only the rows of
the tenants named in the connection's `helpdesk.tenants` setting, and the services connect as
roles that own their tables without bypassing policies (FORCE ROW LEVEL SECURITY). The pool
sets that setting on each checkout from the scope of the code that checks out:

- an HTTP request is scoped to its caller's tenant once the token is admitted (http_auth);
- a consumer's batch to the tenants of its events (consumer.py);
- the platform's own work - migrations, background jobs, command-line tools - to all tenants,
  and only where the code says so (`all_tenants`).

Anything else sees no row at all: a query that forgets its tenant filter returns nothing, and
one that writes another tenant's row fails, rather than crossing tenants.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from helpdesk_runtime.db import Connection

SETTING = "helpdesk.tenants"
ALL = "*"
NONE = "{}"

_scope: ContextVar[str] = ContextVar("tenant_scope", default=NONE)

# Functions that the indexed filters of our queries call. A policy makes PostgreSQL evaluate
# the tenant check before any condition that is not LEAKPROOF (it could leak other rows in
# an error), so an index cannot serve such a condition: the ticket search scanned every row
# of the tenant (0.08 ms became 6.5 ms on 4,000 tickets). None of these raises an error that
# depends on the row's data; only a superuser can mark them, once per database (template1
# covers databases made after): deploy/postgres/leakproof.sql.
INDEXED_FUNCTIONS = (
    "ts_match_vq(tsvector,tsquery)",  # full-text search: search @@ query
    "arraycontains(anyarray,anyarray)",  # tags @> ...
    "arrayoverlap(anyarray,anyarray)",  # tags && ...
    "lower(text)",  # lower(email) = ..., lower(name) LIKE ...
    "textlike(text,text)",  # name LIKE 'prefix%'
)


def _literal(tenants: Iterable[str]) -> str:
    """A PostgreSQL text[] literal, each id quoted (an id cannot widen the scope)."""
    quoted = ('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in sorted(set(tenants)))
    return "{" + ",".join(quoted) + "}"


@contextmanager
def scoped_to(tenants: Iterable[str]) -> Iterator[None]:
    """Connections checked out inside see these tenants' rows only (none for no tenants)."""
    token = _scope.set(_literal(tenants))
    try:
        yield
    finally:
        _scope.reset(token)


@contextmanager
def all_tenants() -> Iterator[None]:
    """Connections checked out inside see every tenant: the platform's own work only."""
    token = _scope.set(ALL)
    try:
        yield
    finally:
        _scope.reset(token)


def narrow_to(tenant_id: str) -> None:
    """Scope the rest of the current task to one tenant (an HTTP request, once its token is
    admitted: a dependency cannot wrap the route; the request's middleware resets it)."""
    _scope.set(_literal((tenant_id,)))


def current_scope() -> str:
    """`*`, or the text[] literal of the tenants in scope."""
    return _scope.get()


async def apply_scope(conn: "Connection") -> None:
    """The pool's `setup`: give a connection just checked out the scope of its borrower.

    Session-wide (not SET LOCAL), because a connection is also used outside transactions;
    every checkout sets it again, so a scope never outlives its borrower."""
    await conn.execute("SELECT set_config($1, $2, false)", SETTING, _scope.get())


async def functions_not_leakproof(conn: "Connection") -> list[str]:
    """Those of INDEXED_FUNCTIONS that this database has not marked LEAKPROOF."""
    rows = await conn.fetch(
        "SELECT f FROM unnest($1::text[]) AS f WHERE NOT (SELECT proleakproof FROM pg_proc"
        " WHERE oid = f::regprocedure)",
        list(INDEXED_FUNCTIONS),
    )
    return [r["f"] for r in rows]
