"""The one structlog configuration: JSON in pods, console on a terminal.

Correlation ids live in structlog's contextvars, bound per HTTP request and per consumed
batch, so every line logged while handling it carries them.
"""

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

_TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s\"]+")


def _redact_tokens(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # A stream token rides in the URL (EventSource cannot send headers), so access lines
    # would carry it; it is short-lived and single-purpose, and still kept out of logs.
    message = event.get("event")
    if isinstance(message, str) and "access_token=" in message:
        event["event"] = _TOKEN_IN_URL.sub(r"\1[redacted]", message)
    return event


_SHARED: list[structlog.types.Processor] = [
    _redact_tokens,
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def configure_logging(service: str, level: str = "INFO", fmt: str = "auto") -> None:
    """Route structlog and the standard library (uvicorn, aiokafka …) through one chain."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    final: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, renderer] if use_json else [renderer]
    )
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),  # e.g. FastStream's topic, group_id, message_id
                *_SHARED,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; the type is Any so call sites can pass arbitrary key/values."""
    return structlog.stdlib.get_logger(name)


@contextmanager
def bound(**values: object) -> Iterator[None]:
    """Bind values (correlation_id, tenant_id …) to every log line inside the block."""
    with structlog.contextvars.bound_contextvars(**values):
        yield
