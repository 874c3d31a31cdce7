"""Spans, recorded with the OpenTelemetry SDK and exported over OTLP/HTTP when
OTEL_EXPORTER_OTLP_ENDPOINT names a collector.

`trace.py` carries the W3C context from a request or a consumed record to the events it
causes; this module makes each of those hops a span a tracing backend can show: the HTTP
request (server), each consumed event (consumer), each published event (producer: the
relay's delay is visible), each fired timer and each message sent to a person (client).
Their ids are the ids `trace.py` propagates, so one ticket's trace runs from the agent's
request through ticketing, Kafka, SLA, feedback and notifications.

Without an endpoint nothing is recorded: a span is only its ids, as cheap as before. Each
service runtime has a tracer of its own rather than OpenTelemetry's global one, so that the
services of one process (the tests run four) still report under their own names.
"""

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as otel
from opentelemetry.trace import SpanKind, Status, StatusCode

from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.trace import TraceContext, continued

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from helpdesk_runtime.settings import ServiceSettings

__all__ = ["Span", "SpanKind", "Tracer", "ended"]

log = get_logger(__name__)

Attributes = Mapping[str, str | bool | int | float]


class Span:
    """One hop of a trace: its context (what the events it causes carry), and while the
    tracer records, the OpenTelemetry span to end."""

    __slots__ = ("_otel", "context")

    def __init__(self, context: TraceContext, recorded: otel.Span | None = None) -> None:
        self.context = context
        self._otel = recorded

    @property
    def recorded(self) -> bool:
        """Whether this span is recorded (its trace sampled): its attributes are worth building."""
        return self._otel is not None and self._otel.is_recording()

    def set(self, key: str, value: str | bool | int | float) -> None:
        if self._otel is not None:
            self._otel.set_attribute(key, value)

    def set_all(self, attributes: Attributes) -> None:
        if self._otel is not None:
            self._otel.set_attributes(attributes)

    def rename(self, name: str) -> None:
        """A server span learns its route only once the router has matched it."""
        if self._otel is not None:
            self._otel.update_name(name)

    def fail(self, description: str) -> None:
        """Mark the span failed (the hop's work did not happen): a backend shows it red."""
        if self._otel is not None:
            self._otel.set_status(Status(StatusCode.ERROR, description[:500]))

    def end(self) -> None:
        if self._otel is not None:
            self._otel.end()


class Tracer:
    """Starts spans; records and exports them when built with a provider (`for_service`)."""

    def __init__(self, provider: "TracerProvider | None" = None) -> None:
        self._provider = provider
        self._otel = provider.get_tracer("helpdesk_runtime") if provider is not None else None

    @classmethod
    def for_service(
        cls, settings: "ServiceSettings", exporter: "SpanExporter | None" = None
    ) -> "Tracer":
        """The service's tracer: exporting to OTEL_EXPORTER_OTLP_ENDPOINT (or to `exporter`,
        in tests), else not recording."""
        endpoint = settings.otel_exporter_otlp_endpoint
        if not endpoint:
            return cls()
        # Imported here: a service that exports nothing does not load the SDK.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        # Resource.create adds OTEL_RESOURCE_ATTRIBUTES (a pod's name, say, from the
        # downward API); the batch processor and the exporter read their OTEL_BSP_* and
        # OTEL_EXPORTER_OTLP_* variables (headers, timeout, compression) themselves.
        resource = Resource.create(
            {
                "service.name": settings.service_name,
                "service.namespace": "helpdesk",
                "deployment.environment.name": settings.environment,
            }
        )
        # A new trace is kept with the configured probability; a continued one keeps its
        # caller's decision, so a trace is whole or absent, never a few scattered spans.
        sampler = ParentBased(TraceIdRatioBased(settings.otel_traces_sampler_arg))
        provider = TracerProvider(resource=resource, sampler=sampler)
        exporter = exporter or OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
        log.info("exporting spans", endpoint=endpoint, sampled=settings.otel_traces_sampler_arg)
        return cls(provider)

    @property
    def recording(self) -> bool:
        """Whether spans are recorded: their names and attributes are worth building."""
        return self._otel is not None

    def start(
        self,
        name: str,
        parent: TraceContext | str | bytes | None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes | None = None,
    ) -> Span:
        """A span continuing `parent` (a context or a `traceparent` header), or the root of
        a new trace when there is none (or it is invalid)."""
        if self._otel is None:
            return Span(parent.child() if isinstance(parent, TraceContext) else continued(parent))
        parent_context = parent if isinstance(parent, TraceContext) else TraceContext.parse(parent)
        if parent_context is not None and not parent_context.sampled:
            # What the parent-based sampler would decide, without the SDK's 5 µs: most
            # events of a sampled deployment arrive so.
            return Span(parent_context.child())
        recorded = self._otel.start_span(
            name,
            context=_remote(parent_context),
            kind=kind,
            attributes=attributes,
        )
        return Span(_context_of(recorded), recorded)

    @contextmanager
    def span(
        self,
        name: str,
        parent: TraceContext | str | bytes | None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes | None = None,
    ) -> Iterator[Span]:
        """A span for the block, failed if the block raises."""
        opened = self.start(name, parent, kind, attributes)
        with ended([opened]):
            yield opened

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Export what is still queued (within `timeout_s`) and stop the exporting thread."""
        if self._provider is not None:
            self._provider.force_flush(int(timeout_s * 1000))
            self._provider.shutdown()


@contextmanager
def ended(spans: Iterable[Span]) -> Iterator[None]:
    """End these spans after the block (one batch's work for all of them), failed if it raises."""
    try:
        yield
    except BaseException as exc:
        for span in spans:
            span.fail(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        for span in spans:
            span.end()


def _remote(parent: TraceContext | None) -> Any:
    """OpenTelemetry's context for a parent known only by its ids (from a header, a stored
    event or a timer); empty for a new trace."""
    if parent is None:
        return otel.set_span_in_context(otel.INVALID_SPAN)
    span_context = otel.SpanContext(
        trace_id=int(parent.trace_id, 16),
        span_id=int(parent.span_id, 16),
        is_remote=True,
        trace_flags=otel.TraceFlags(int(parent.flags, 16)),
    )
    return otel.set_span_in_context(otel.NonRecordingSpan(span_context))


def _context_of(span: otel.Span) -> TraceContext:
    c = span.get_span_context()
    return TraceContext(f"{c.trace_id:032x}", f"{c.span_id:016x}", f"{int(c.trace_flags):02x}")
