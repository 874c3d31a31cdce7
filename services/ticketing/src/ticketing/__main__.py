"""`python -m ticketing`: run the service (HTTP on HTTP_PORT, consumers, relay)."""

import uvicorn

from ticketing.bootstrap import create_app
from ticketing.config import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our structlog configuration owns the root logger
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )


if __name__ == "__main__":
    main()
