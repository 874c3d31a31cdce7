"""The notifications service's command line: the runtime's commands (serve, migrate, token).

The local mail catcher is `python -m notifications.mailcatcher`.
"""

from helpdesk_runtime.cli import ServiceCli
from notifications.bootstrap import build_runtime, create_app
from notifications.config import Settings

cli = ServiceCli[Settings](
    name="notifications",
    settings=Settings,
    runtime=build_runtime,
    app=create_app,
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
