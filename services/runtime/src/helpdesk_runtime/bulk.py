"""Writing many rows of a projection at once."""

from collections.abc import Sequence
from typing import Any

from helpdesk_runtime.db import Connection


async def insert_many(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert these rows in the caller's transaction, at COPY's speed.

    COPY itself cannot write a table under row-level security: PostgreSQL refuses it to a
    role that policies bind (tenancy.py), as ours do. So the rows are COPYed into a
    temporary table of this session shaped like `table` (no policy there), then moved in
    one INSERT, which the policy checks like any other."""
    await _moved(conn, table, columns, rows, "")


async def upsert_many(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
    *, key: Sequence[str], update: Sequence[str],
) -> None:  # fmt: skip
    """Insert these rows, or update `update` of those whose `key` exists; inside the
    caller's transaction. Rows must have distinct keys.

    Staged like `insert_many`. `executemany` of an upsert costs PostgreSQL a bind and an
    execution per row, and asyncpg checks every element of an array parameter against
    `collections.abc` (so `INSERT ... SELECT FROM unnest($1, ...)` is no cheaper on the
    client); COPY costs neither."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in update)
    await _moved(
        conn, table, columns, rows, f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


async def _moved(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
    on_conflict: str,
) -> None:  # fmt: skip
    """COPY into `<table>_staged`, then move the rows into `table` in the order given. The
    staging table is emptied by the move itself (and at commit), so a second call in one
    transaction starts clean."""
    if not rows:
        return
    assert conn.is_in_transaction(), "the staged rows live until the transaction ends"
    stage, names = f"{table}_staged", ", ".join(columns)
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS"
        f" SELECT {names} FROM {table} WITH NO DATA"
    )
    await conn.copy_records_to_table(stage, columns=list(columns), records=rows)
    # In the order given: an event log's positions follow it (ctid is the order COPY wrote).
    await conn.execute(
        f"WITH moved AS (DELETE FROM {stage} RETURNING ctid AS written, *)"
        f" INSERT INTO {table} ({names}) SELECT {names} FROM moved ORDER BY written{on_conflict}"
    )
