"""Running ticketing's own command line for what only it can do.

A tenant is registered in ticketing's database (its registry is the source of the
compacted `ticketing.tenants.v1`), and no HTTP API registers tenants: an API would have
to trust some tenant's token to create tenants. So `helpdesk tenant create` runs
`python -m ticketing tenants add` and `python -m ticketing token` where ticketing's
settings (DATABASE_URL, JWT_SECRET) are:

- locally, in this environment (the default command, `python -m ticketing`);
- in Kubernetes, inside the ticketing jobs Deployment, whose pods have the settings and
  the database's Secret: `--ticketing-command "kubectl exec -n helpdesk
  deploy/ticketing-jobs -- python -m ticketing"` (or HELPDESK_TICKETING_COMMAND).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence

DEFAULT_COMMAND = f"{shlex.quote(sys.executable)} -m ticketing"


class CommandError(RuntimeError):
    """Ticketing's command exited non-zero; its own message is the text."""


def run(command: str, args: Sequence[str], *, timeout_s: float = 120.0) -> str:
    """Run `command args...`; its standard output, or CommandError with its stderr."""
    argv = [*shlex.split(command), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise CommandError(f"`{shlex.join(argv)}` exited {done.returncode}: {tail}")
    return done.stdout


def create_tenant(
    command: str, tenant_id: str, name: str, admin: str, admin_name: str | None, ttl_s: int
) -> str:
    """Register the tenant (again harmlessly: `tenants add` updates the name) and mint a
    token for its first admin; the token.

    The token comes from the development signer (JWT_SECRET). A deployment that checks
    tokens against an identity provider (JWT_PUBLIC_KEY, JWT_JWKS_URL) has none, and
    ticketing says so: the admin then gets their token from that provider."""
    run(command, ["tenants", "add", tenant_id, "--name", name])
    token_args = ["token", "--tenant", tenant_id, "--agent", admin, "--role", "admin",
                  "--ttl", str(ttl_s)]  # fmt: skip
    if admin_name:
        token_args += ["--name", admin_name]
    return run(command, token_args).strip()
