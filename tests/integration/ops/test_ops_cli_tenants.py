"""`helpdesk tenant create` runs ticketing's own command line (locally here; through
`kubectl exec` in Kubernetes) and hands back a token its API accepts as the admin's."""

import asyncio

import asyncpg
import jwt
import pytest
from typer.testing import CliRunner

from helpdesk_ops.cli import app


async def test_tenant_create_registers_it_and_prints_its_first_admins_token(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)  # ticketing's setting, as in its pod
    args = ["tenant", "create", "initech", "--name", "Initech", "--admin", "peter"]
    answer = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert answer.exit_code == 0, answer.output

    claims = jwt.decode(answer.stdout.strip(), options={"verify_signature": False})
    assert (claims["tenant_id"], claims["sub"], claims["role"]) == ("initech", "peter", "admin")
    conn = await asyncpg.connect(database_url)
    try:
        name = await conn.fetchval("SELECT name FROM tenants WHERE tenant_id = 'initech'")
    finally:
        await conn.close()
    assert name == "Initech"


async def test_tenant_create_explains_what_ticketing_refused(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    args = ["tenant", "create", "Not A Tenant!", "--name", "x", "--admin", "a"]
    answer = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert answer.exit_code == 1
    assert "is not a tenant id" in answer.stderr
