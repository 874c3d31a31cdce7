"""W3C trace context (`traceparent`), carried from a request or a consumed event to every
event it causes, so a trace can follow a ticket across services and Kafka.

The tracing backend comes later (OpenTelemetry reads and writes this same header); what
must hold from the first event on is the propagation. An HTTP request or a consumed record
that brings a valid `traceparent` continues that trace, anything else starts one; the
events appended while handling it store the context and the relay sends it as a Kafka
header.
"""

import random
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

HEADER = "traceparent"
_FORMAT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    """One span's place in a trace: the trace id, its own span id and the sampled flag."""

    trace_id: str
    span_id: str
    flags: str = "01"

    @classmethod
    def parse(cls, header: str | bytes | None) -> "TraceContext | None":
        """The context a `traceparent` header names, or None when it is absent or invalid."""
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        found = _FORMAT.match(header.strip()) if header else None
        if found is None or set(found[1]) == {"0"} or set(found[2]) == {"0"}:
            return None
        return cls(found[1], found[2], found[3])

    @classmethod
    def new(cls, *, sampled: bool = True) -> "TraceContext":
        """The root of a new trace (one a tracer has decided not to record: not sampled)."""
        return cls(_random_hex(128), _random_hex(64), "01" if sampled else "00")

    @property
    def sampled(self) -> bool:
        """Whether the trace is recorded (W3C's sampled flag)."""
        return bool(int(self.flags, 16) & 1)

    def child(self) -> "TraceContext":
        """A span of this trace caused by this one (e.g. our handling of a request)."""
        return TraceContext(self.trace_id, _random_hex(64), self.flags)

    @property
    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def _random_hex(bits: int) -> str:
    """A random id that is not all zeros (which W3C reserves for "invalid"). From `random`,
    as OpenTelemetry's id generator does: ids must be unique, not secret, and one per
    consumed event from the OS's random source was a system call each."""
    value = 0
    while not value:
        value = random.getrandbits(bits)
    return f"{value:0{bits // 4}x}"


def continued(header: str | bytes | None) -> TraceContext:
    """Our span: a child of the caller's context, or the root of a new trace."""
    parent = TraceContext.parse(header)
    return parent.child() if parent is not None else TraceContext.new()


_current: ContextVar[TraceContext | None] = ContextVar("trace_context", default=None)
_by_cause: ContextVar[Mapping[Any, TraceContext] | None] = ContextVar(
    "trace_by_cause", default=None
)


@contextmanager
def using(context: TraceContext) -> Iterator[None]:
    """Events appended inside the block belong to `context` (an HTTP request's span)."""
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> TraceContext | None:
    """The span the code runs in (a request's, a fired timer's), if any."""
    return _current.get()


def propagated() -> dict[str, str]:
    """The header that carries the current span to a service this code calls over HTTP."""
    context = _current.get()
    return {HEADER: context.header} if context is not None else {}


@contextmanager
def by_cause(contexts: Mapping[UUID, TraceContext]) -> Iterator[None]:
    """Inside a consumed batch: each consumed event id's span, for the events it causes."""
    token = _by_cause.set(contexts)
    try:
        yield
    finally:
        _by_cause.reset(token)


def traceparent_for(causation_id: UUID | None) -> str | None:
    """The `traceparent` to store with an event caused by `causation_id` (or the request)."""
    spans = _by_cause.get()
    context = spans.get(causation_id) if spans and causation_id is not None else None
    context = context or _current.get()
    return context.header if context is not None else None
