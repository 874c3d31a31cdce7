"""The one structlog configuration: JSON in pods, console on a terminal.

Correlation ids live in structlog's contextvars, bound per HTTP request and per consumed
batch, so every line logged while handling it carries them.
"""

import logging
import re
import sys
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

_QUERY_SECRETS = re.compile(r"([?&](?:access_token|q)=)[^&\s\"]+")
"""A stream token rides in the URL (EventSource cannot send headers), and a search (`q`)
may be a customer's name or address: access lines keep neither."""
_EMAIL = re.compile(r"[^@\s'\"<>(),;:]+@[^@\s'\"<>(),;:]+\.[A-Za-z]{2,}")


def _redact(text: str) -> str:
    return _EMAIL.sub("[email]", _QUERY_SECRETS.sub(r"\1[redacted]", text))


def _redact_personal_data(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The last line of defence: no log line carries a URL's secrets or an email address,
    whatever wrote it (a dead letter's reason names the address another customer has)."""
    for key, value in event.items():
        if isinstance(value, str) and ("@" in value or "=" in value):
            event[key] = _redact(value)
    return event


_SHARED: list[structlog.types.Processor] = [
    _redact_personal_data,
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


class BrokerOutageFilter(logging.Filter):
    """While the broker is unreachable the Kafka client logs every failed attempt, hundreds
    of lines a second: keep the first, hold back the rest, and say how long it lasted when
    the broker answers again (`end`, called by the service's broker watch)."""

    # The last three are the broker coming back: partition leaders being elected, which the
    # producer logs once per partition and retry (dozens of lines for one restart).
    _SIGNS = (
        "Unable connect to node", "Unable to update metadata", "NodeNotReadyError",
        "KafkaConnectionError", "coordinator dead", "Connection reset",
        "NotLeaderForPartition", "NotLeaderOrFollower", "LeaderNotAvailable",
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.since: float | None = None
        self.held_back = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka") or record.levelno < logging.WARNING:
            return True
        if self.since is not None:
            self.held_back += 1
            return False
        message = record.getMessage()
        if any(sign in message for sign in self._SIGNS):
            self.since = time.monotonic()
            record.msg, record.args = f"kafka unreachable: {message}", ()
        return True

    @property
    def in_outage(self) -> bool:
        return self.since is not None

    def end(self) -> None:
        """The broker answers again: log the outage's duration, once."""
        if self.since is None:
            return
        get_logger(__name__).warning(
            "kafka reachable again",
            outage_s=round(time.monotonic() - self.since, 1),
            log_lines_held_back=self.held_back,
        )
        self.since, self.held_back = None, 0


broker_outage = BrokerOutageFilter()


class FailureStreak:
    """A run of failures of one thing (the relay's passes, say) in a few lines, however long
    it lasts: the first failure, a reminder at most every `every_s`, and the end with how
    long it lasted and how many attempts failed."""

    def __init__(self, what: str, every_s: float = 60.0) -> None:
        self._what = what
        self._every_s = every_s
        self._since: float | None = None
        self._last_said = 0.0
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.failures += 1
        error = f"{type(exc).__name__}: {exc}"[:500]
        if self._since is None:
            self._since = self._last_said = now
            get_logger(__name__).warning(f"{self._what} failing", error=error)
        elif now - self._last_said >= self._every_s:
            self._last_said = now
            get_logger(__name__).warning(
                f"{self._what} still failing", error=error, failed_attempts=self.failures,
                for_s=round(now - self._since, 1),
            )  # fmt: skip

    def succeeded(self) -> None:
        if self._since is not None:
            get_logger(__name__).warning(
                f"{self._what} working again", failed_attempts=self.failures,
                after_s=round(time.monotonic() - self._since, 1),
            )  # fmt: skip
        self._since, self.failures = None, 0


def configure_logging(service: str, level: str = "INFO", fmt: str = "auto") -> None:
    """Route structlog and the standard library (uvicorn, aiokafka …) through one chain."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    # Once more after the exception is formatted: a traceback may quote a value.
    final: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, _redact_personal_data, renderer]
        if use_json
        else [renderer]
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
    handler.addFilter(broker_outage)
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
