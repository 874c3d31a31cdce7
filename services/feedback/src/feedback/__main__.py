"""The feedback service's command line: the runtime's commands (serve, migrate, token)."""

from feedback.bootstrap import build_runtime, create_app
from feedback.config import Settings
from helpdesk_runtime.cli import ServiceCli

cli = ServiceCli[Settings](
    name="feedback",
    settings=Settings,
    runtime=build_runtime,
    app=create_app,
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
