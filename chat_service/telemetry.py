"""Tracing (OpenTelemetry SDK, OTLP over HTTP/protobuf) and JSON logs on stdout.

`create_tracer` builds the tracer for one application (no global provider is
installed): the SDK's, exporting, when an endpoint is configured; else `IdsOnlyTracer`,
whose spans record nothing but carry ids, so log lines stay correlated.
`configure_logging` installs the JSON formatter, which adds the current trace and
span ids to every line. Nothing here logs request bodies or headers.
"""

from __future__ import annotations

import json
import logging
import random
import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext

from chat_service.config import Config

# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


def create_tracer(config: Config) -> tuple[TracerProvider | None, trace.Tracer]:
    """(provider to shut down, tracer) for one application.

    With OTEL_EXPORTER_OTLP_ENDPOINT, spans go to `<endpoint>/v1/traces`, and the SDK's
    standard `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` choose what is recorded
    (default: everything, or what the caller's `traceparent` says). Without one, no span
    is recorded (nothing would read it), but every span still gets ids (`IdsOnlyTracer`).
    """
    if not config.otel_endpoint:
        return None, IdsOnlyTracer()
    resource = Resource.create({"service.name": config.otel_service_name})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=f"{config.otel_endpoint}/v1/traces", timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, provider.get_tracer("chat_service")


class IdsOnlyTracer(trace.Tracer):
    """A tracer whose spans record nothing but carry ids: the trace id of the span they
    start in (the caller's `traceparent`, continued), else a new one, and a span id.

    What the SDK does with an always-off sampler, without its sampler call, attribute
    copies and span bookkeeping: a fraction of the cost on every request and statement.
    """

    def start_span(self, name: str, context: otel_context.Context | None = None,
                   *args: Any, **kwargs: Any) -> Span:
        """A non-recording span with fresh ids, under the current (or given) span."""
        parent = trace.get_current_span(context).get_span_context()
        trace_id = parent.trace_id if parent.is_valid else _nonzero_bits(128)
        return NonRecordingSpan(SpanContext(trace_id, _nonzero_bits(64), is_remote=False))

    def start_as_current_span(  # type: ignore[override]
            self, name: str, context: otel_context.Context | None = None,
            *args: Any, **kwargs: Any) -> _Current:
        """`start_span`, made the current span for a `with` block."""
        return _Current(self.start_span(name, context))


class _Current:
    """Makes a span current for a `with` block (`trace.use_span` without exception
    recording, which a span that records nothing has no use for)."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span

    def __enter__(self) -> Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        otel_context.detach(self._token)


def _nonzero_bits(bits: int) -> int:
    while True:
        value = random.getrandbits(bits)  # ids, not secrets (as the SDK's)
        if value:
            return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace ids, extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record`; fields passed with `extra=` are included as they are."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # ASCII-only lines: nothing in a path or nickname can split a record in two.
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """Send every logger's records, as JSON lines, to stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Requests are logged once by our middleware, with the route and trace id.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
