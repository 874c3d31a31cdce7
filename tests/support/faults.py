"""Database faults the tests inject: what a failover or an operator does to a service."""

import asyncpg


async def terminate_sessions(admin_url: str, database: str) -> None:
    """Cut every session on `database`, as an operator or a failover does."""
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await admin.close()


async def set_read_only(admin_url: str, database: str, read_only: bool) -> None:
    """Make `database` refuse writes (or take them again), as after a failover; its sessions
    are cut, so that the new ones see it."""
    admin = await asyncpg.connect(admin_url)
    try:
        if read_only:
            await admin.execute(
                f'ALTER DATABASE "{database}" SET default_transaction_read_only = on'
            )
        else:
            await admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
    finally:
        await admin.close()
    await terminate_sessions(admin_url, database)
