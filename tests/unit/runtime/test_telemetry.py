"""Spans: the ids they propagate are the ids exported, a continued trace keeps its caller's
sampling decision, and without an endpoint nothing is recorded."""

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from helpdesk_runtime.settings import ServiceSettings
from helpdesk_runtime.telemetry import Tracer, ended
from helpdesk_runtime.trace import TraceContext

CALLER = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01")
NOT_SAMPLED = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "00")


def _tracer(ratio: float = 1.0) -> tuple[Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    settings = ServiceSettings(
        service_name="svc",
        otel_exporter_otlp_endpoint="http://collector:4318",
        otel_traces_sampler_arg=ratio,
    )
    return Tracer.for_service(settings, exporter), exporter


def _exported(tracer: Tracer, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    tracer.shutdown()  # flushes the batch processor
    return list(exporter.get_finished_spans())


def test_without_an_endpoint_a_span_is_only_ids_continuing_its_parent() -> None:
    tracer = Tracer.for_service(ServiceSettings(service_name="svc"))
    assert not tracer.recording
    span = tracer.start("POST /x", CALLER.header, SpanKind.SERVER)
    assert span.context.trace_id == CALLER.trace_id
    assert span.context.span_id != CALLER.span_id
    assert tracer.start("root", None).context.trace_id != CALLER.trace_id
    span.end()  # nothing to end: harmless


def test_an_exported_span_has_the_ids_the_events_carry_and_its_callers_parent() -> None:
    tracer, exporter = _tracer()
    with tracer.span("POST /v1/tickets", CALLER.header, SpanKind.SERVER, {"a": 1}) as span:
        child = tracer.start("send topic", span.context, SpanKind.PRODUCER)
        child.end()
    [sent, request] = _exported(tracer, exporter)
    assert (request.context.trace_id, request.context.span_id) == (
        int(span.context.trace_id, 16), int(span.context.span_id, 16),
    )  # fmt: skip
    assert request.parent is not None
    assert request.parent.span_id == int(CALLER.span_id, 16)
    assert request.parent.is_remote
    assert sent.parent is not None
    assert sent.parent.span_id == request.context.span_id
    assert request.resource.attributes["service.name"] == "svc"
    assert request.attributes == {"a": 1}
    assert (request.kind, sent.kind) == (SpanKind.SERVER, SpanKind.PRODUCER)


def test_a_span_without_a_valid_parent_starts_a_trace() -> None:
    tracer, exporter = _tracer()
    tracer.start("timer", "garbage").end()
    tracer.start("timer", None).end()
    first, second = _exported(tracer, exporter)
    assert (first.parent, second.parent) == (None, None)
    assert first.context.trace_id != second.context.trace_id


def test_a_trace_its_caller_did_not_sample_is_not_recorded_and_stays_unsampled() -> None:
    tracer, exporter = _tracer(ratio=1.0)
    span = tracer.start("process", NOT_SAMPLED.header, SpanKind.CONSUMER)
    span.end()
    assert span.context.trace_id == NOT_SAMPLED.trace_id
    assert not span.context.sampled  # the events it causes say so downstream
    assert _exported(tracer, exporter) == []


@pytest.mark.parametrize(("ratio", "recorded"), [(0.0, 0), (1.0, 20)])
def test_new_traces_are_sampled_at_the_configured_ratio(ratio: float, recorded: int) -> None:
    tracer, exporter = _tracer(ratio)
    spans = [tracer.start("root", None) for _ in range(20)]
    for span in spans:
        span.end()
    assert sum(s.context.sampled for s in spans) == recorded
    assert len(_exported(tracer, exporter)) == recorded


def test_spans_ended_together_are_failed_when_their_work_raises() -> None:
    tracer, exporter = _tracer()
    spans = [tracer.start(f"send {n}", None) for n in range(2)]
    with pytest.raises(RuntimeError), ended(spans):
        raise RuntimeError("broker away")
    exported = _exported(tracer, exporter)
    assert [s.status.status_code for s in exported] == [StatusCode.ERROR] * 2
    assert all(s.status.description == "RuntimeError: broker away" for s in exported)
    assert all(s.end_time is not None for s in exported)


def test_an_endpoint_must_be_a_url() -> None:
    with pytest.raises(ValueError, match="otel_exporter_otlp_endpoint"):
        ServiceSettings(service_name="svc", otel_exporter_otlp_endpoint="collector:4318")
    blank = ServiceSettings(service_name="svc", otel_exporter_otlp_endpoint=" ")
    assert blank.otel_exporter_otlp_endpoint is None
