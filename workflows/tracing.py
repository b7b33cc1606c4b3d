"""OpenTelemetry traces, on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: one trace runs from the
API call through the request's workflow and its activities to the MLflow calls they make.

- each process (`signoff api`, `signoff worker`, `signoff dev`) calls `setup_tracing` once:
  a tracer provider exporting over OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`
  (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` wins, as OpenTelemetry specifies), batched;
- the Temporal client, and so every worker built on it, carries Temporal's
  `TracingInterceptor` (`temporal_interceptors`), which carries the trace in workflow and
  activity headers; workflow spans are made outside the sandbox and never on replay;
- the MLflow client's httpx calls are spans (`instrument_http_client`); only that client's:
  webhook receivers get no trace header, and their URLs (which may hold a token) are never put
  on a span;
- the API's FastAPI instrumentation is `api.observability`'s.

Standard OpenTelemetry variables (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`, ...) apply as documented upstream.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # The SDK, its exporter and the instrumentations are imported only once tracing is on:
    # they cost every process's start-up (Temporal's interceptor pulls in its worker package).
    import httpx
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.client import Interceptor

    from workflows.settings import WorkerSettings

log = logging.getLogger(__name__)

_provider: TracerProvider | None = None


def traces_endpoint(settings: WorkerSettings) -> str | None:
    """Where spans go, or None when tracing is off."""
    if settings.otlp_traces_endpoint:
        return settings.otlp_traces_endpoint
    if not settings.otlp_endpoint:
        return None
    return settings.otlp_endpoint.rstrip("/") + "/v1/traces"


def setup_tracing(settings: WorkerSettings, service_name: str) -> bool:
    """Start exporting this process's spans as `service_name` (unless `OTEL_SERVICE_NAME`
    names it) when an OTLP endpoint is configured; whether tracing is on."""
    global _provider
    endpoint = traces_endpoint(settings)
    if _provider is not None or endpoint is None:
        return _provider is not None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = settings.otel_service_name or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("exporting traces to %s", endpoint.split("?", 1)[0])
    return True


def tracing_enabled() -> bool:
    return _provider is not None


def temporal_interceptors() -> list[Interceptor]:
    """The Temporal client's interceptors (the worker's follow from its client)."""
    if not tracing_enabled():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def instrument_http_client(client: httpx.AsyncClient) -> None:
    """Make this client's calls spans, with the trace carried in `traceparent`."""
    if tracing_enabled():
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client)
