"""Tracing (OpenTelemetry SDK, OTLP over HTTP/protobuf) and JSON logs on stdout.

`create_tracer_provider` builds a provider for one application (no global
provider is installed); it exports only when an endpoint is configured.
`configure_logging` installs the JSON formatter, which adds the current trace and
span ids to every line. Nothing here logs request bodies or headers.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from chat_service.config import Config

# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


def create_tracer_provider(config: Config) -> TracerProvider:
    """A provider whose spans go to `<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`, if set.

    Without an endpoint no span is recorded (nothing would read it), but every span
    still gets a trace id, so log lines stay correlated. With one, the SDK's standard
    `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` choose what is recorded (default:
    everything, or what the caller's `traceparent` says).
    """
    resource = Resource.create({"service.name": config.otel_service_name})
    if not config.otel_endpoint:
        return TracerProvider(resource=resource, sampler=ALWAYS_OFF)
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=f"{config.otel_endpoint}/v1/traces", timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


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
