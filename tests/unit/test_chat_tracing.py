"""The tracer without an exporter (pure): spans record nothing but carry ids, continue
the caller's trace, nest, and reach the JSON log lines."""

from __future__ import annotations

import json
import logging

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from chat_service.config import Config
from chat_service.telemetry import IdsOnlyTracer, JsonFormatter, create_tracer

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def test_without_an_endpoint_nothing_is_recorded_or_exported() -> None:
    provider, tracer = create_tracer(Config())
    assert provider is None
    assert isinstance(tracer, IdsOnlyTracer)
    with tracer.start_as_current_span("GET /api/messages") as span:
        assert not span.is_recording()
        assert trace.get_current_span() is span
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_spans_get_fresh_ids_and_children_keep_the_trace() -> None:
    tracer = IdsOnlyTracer()
    with tracer.start_as_current_span("server") as outer, \
            tracer.start_as_current_span("redis GETEX") as inner:
        assert inner.get_span_context().trace_id == outer.get_span_context().trace_id
        assert inner.get_span_context().span_id != outer.get_span_context().span_id
    with tracer.start_as_current_span("another request") as other:
        assert other.get_span_context().trace_id != outer.get_span_context().trace_id
    assert all(s.get_span_context().is_valid for s in (outer, inner, other))


def test_the_callers_trace_is_continued_and_reaches_the_log_line() -> None:
    parent = TraceContextTextMapPropagator().extract(
        {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    record = logging.LogRecord("chat_service.access", logging.INFO, __file__, 1, "GET", None,
                               None)
    with IdsOnlyTracer().start_as_current_span("GET /api/messages", context=parent) as span:
        line = json.loads(JsonFormatter().format(record))
    assert format(span.get_span_context().trace_id, "032x") == CALLER_TRACE
    assert line["trace_id"] == CALLER_TRACE
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")
    assert line["span_id"] != CALLER_SPAN
