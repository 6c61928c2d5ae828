"""Runs benches/peers.py with an OpenTelemetry SDK tracer provider whose
spans go through a BatchSpanProcessor to an exporter that drops them."""
import runpy
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class Drop(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(Drop()))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("bench")
sys.argv = ["peers.py"] + sys.argv[1:]
sys.path.insert(0, "benches")
with tracer.start_as_current_span("request"):
    runpy.run_path("benches/peers.py", run_name="__main__")
