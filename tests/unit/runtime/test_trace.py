"""W3C trace context: parsing, continuing a trace, and which context an event gets."""

from uuid import uuid4

import pytest

from helpdesk_runtime.trace import TraceContext, by_cause, continued, traceparent_for, using

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_header_is_read_and_written_back_unchanged() -> None:
    context = TraceContext.parse(VALID)
    assert context == TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01")
    assert context.header == VALID
    assert TraceContext.parse(VALID.encode()) == context


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        VALID.upper(),  # the spec's hex is lowercase
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # unknown version
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short
    ],
)
def test_an_invalid_header_is_ignored(header: str | None) -> None:
    assert TraceContext.parse(header) is None


def test_our_span_continues_the_callers_trace_or_starts_a_new_one() -> None:
    ours = continued(VALID)
    assert ours.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert ours.span_id != "00f067aa0ba902b7"
    assert TraceContext.parse(ours.header) == ours
    fresh, other = continued("nonsense"), continued(None)
    assert fresh.trace_id != other.trace_id
    assert TraceContext.parse(fresh.header) == fresh


def test_an_event_takes_its_causes_span_else_the_requests_else_none() -> None:
    cause, request = uuid4(), continued(None)
    consumed = continued(VALID)
    assert traceparent_for(None) is None
    with using(request):
        assert traceparent_for(None) == request.header
        with by_cause({cause: consumed}):
            assert traceparent_for(cause) == consumed.header
            assert traceparent_for(uuid4()) == request.header
    assert traceparent_for(cause) is None
