"""Replaying a service's projections by running that service's own `rebuild` command.

The fold from events to read models is the service's code, and the tool imports none of
it: `helpdesk rebuild <service>` runs `python -m <service> rebuild` where the service's
settings (DATABASE_URL, the master keys that open personal data) are, locally or through
`kubectl exec` in the service's jobs Deployment, exactly as `tenant create` runs
ticketing's `tenants add` (helpdesk_ops.ticketing_cli).

Only the services whose command line has a `rebuild` are offered (Rebuildable).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from helpdesk_ops.ticketing_cli import CommandError


class Rebuildable(StrEnum):
    """The services with a `python -m <service> rebuild`. Notifications and feedback have
    none (`python -m notifications --help`, `python -m feedback --help`): offering them
    would promise a replay that does not exist."""

    ticketing = "ticketing"
    """Drops the ticket list and the customer directory, folds them from the event log."""
    sla = "sla"
    """Folds every SLA clock again from its input log of ticket events."""


def command_for(service: str, given: str | None) -> str:
    """`--command`, else HELPDESK_<SERVICE>_COMMAND (the variable `tenant create` reads
    for ticketing), else the service's module in this Python: one setting per service, as
    each runs in a Deployment of its own."""
    return (
        given
        or os.environ.get(f"HELPDESK_{service.upper()}_COMMAND")
        or f"{shlex.quote(sys.executable)} -m {service}"
    )


def rebuild(command: str, echo: Callable[[str], None]) -> None:
    """Run `command rebuild`, handing each line it writes (its log) to `echo` as it comes:
    a rebuild of a large log takes a while, and the operator should see it work. No
    timeout: it takes as long as the log is long (Ctrl-C stops waiting; the service's
    rebuild is one transaction, so an interrupted one changes nothing).

    CommandError, with the last lines it wrote, if it exits non-zero."""
    argv = [*shlex.split(command), "rebuild"]
    tail: deque[str] = deque(maxlen=5)
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            tail.append(line.rstrip("\n"))
            echo(line.rstrip("\n"))
    if child.returncode != 0:
        raise CommandError(f"`{shlex.join(argv)}` exited {child.returncode}: " + "\n".join(tail))
