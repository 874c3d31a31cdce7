"""The SLA service's command line: the runtime's commands (serve, migrate, token)."""

from helpdesk_runtime.cli import ServiceCli
from sla.bootstrap import build_runtime, create_app
from sla.config import Settings

cli = ServiceCli[Settings](name="sla", settings=Settings, runtime=build_runtime, app=create_app)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
