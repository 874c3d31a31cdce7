"""Bulk upserts against the real PostgreSQL."""

import asyncpg
import pytest

from helpdesk_runtime.bulk import upsert_many

COLUMNS = ("id", "owner", "state", "tags")


@pytest.fixture
async def items(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "CREATE TABLE items (id int PRIMARY KEY, owner text NOT NULL, state text, tags jsonb)"
    )


async def _rows(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    found = await pool.fetch("SELECT id, owner, state, tags::text FROM items ORDER BY id")
    return [tuple(r) for r in found]


@pytest.mark.usefixtures("items")
async def test_rows_are_inserted_and_updated_keeping_what_is_not_updated(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await upsert_many(conn, "items", COLUMNS, [(1, "ann", "open", '["a"]'),
                                                   (2, "bob", "open", "[]")],
                          key=["id"], update=["state", "tags"])  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        await upsert_many(conn, "items", COLUMNS, [(2, "eve", "solved", '["b"]'),
                                                   (3, "cid", None, "[]")],
                          key=["id"], update=["state", "tags"])  # fmt: skip

    assert await _rows(pool) == [
        (1, "ann", "open", '["a"]'),
        (2, "bob", "solved", '["b"]'),  # the owner is not among the updated columns
        (3, "cid", None, "[]"),
    ]


@pytest.mark.usefixtures("items")
async def test_two_upserts_in_one_transaction_each_write_only_their_own_rows(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await upsert_many(conn, "items", COLUMNS, [(1, "ann", "open", "[]")], key=["id"],
                          update=["owner", "state"])  # fmt: skip
        await upsert_many(conn, "items", COLUMNS, [(1, "ann", "pending", "[]")], key=["id"],
                          update=["owner", "state"])  # fmt: skip
        await upsert_many(conn, "items", COLUMNS, [], key=["id"], update=["state"])

    assert await _rows(pool) == [(1, "ann", "pending", "[]")]


@pytest.mark.usefixtures("items")
async def test_a_failed_upsert_writes_nothing_and_leaves_no_staged_rows(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.NotNullViolationError):
            async with conn.transaction():
                await upsert_many(conn, "items", COLUMNS, [(1, None, "open", "[]")],
                                  key=["id"], update=["state"])  # fmt: skip
        async with conn.transaction():  # the staging table went with the rollback
            await upsert_many(conn, "items", COLUMNS, [(2, "bob", "open", "[]")], key=["id"],
                              update=["state"])  # fmt: skip
            staged = await conn.fetchval("SELECT count(*) FROM items_staged")

    assert staged == 0
    assert await _rows(pool) == [(2, "bob", "open", "[]")]
