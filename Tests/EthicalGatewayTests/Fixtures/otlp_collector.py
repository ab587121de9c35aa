#!/usr/bin/env python3
"""A minimal OpenTelemetry collector for the tracing tests: accepts OTLP/HTTP trace exports and
writes every span it receives as one JSON line to a file.

    otlp_collector.py SPANS_FILE

Prints its port, then serves `POST /v1/traces` on 127.0.0.1. Protobuf bodies
(`application/x-protobuf`, the one encoding the gateway sends) are decoded with the
OpenTelemetry project's own generated classes (PyPI `opentelemetry-proto`), so the gateway's
exporter is checked by an implementation that is not swift-otel's. Each line: traceId, spanId,
parentSpanId (hex, "" for a root), name, kind (OTLP's numbers: 2 server, 3 client), status
{code, message}, attributes {key: value}, service.
Exits after 300 s.
"""
import gzip
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

# Test processes start with SIGTERM blocked (the mask of the runner's thread that spawned
# them): unblocked, so being stopped by PID ends this process at once.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

SPANS_FILE = sys.argv[1]
LOCK = threading.Lock()


def proto_value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def spans_from_protobuf(body):
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    for resource_spans in request.resource_spans:
        resource = {a.key: proto_value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "traceId": span.trace_id.hex(),
                    "spanId": span.span_id.hex(),
                    "parentSpanId": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": int(span.kind),
                    "status": {"code": int(span.status.code), "message": span.status.message},
                    "attributes": {a.key: proto_value(a.value) for a in span.attributes},
                    "service": resource.get("service.name"),
                }


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        content_type = self.headers.get("Content-Type", "")
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        try:
            if content_type.startswith("application/x-protobuf"):
                spans = list(spans_from_protobuf(body))
                answer, answer_type = ExportTraceServiceResponse().SerializeToString(), content_type
            else:
                self.send_error(415)
                return
        except Exception as error:  # a body that does not decode is the gateway's bug: say so
            self.send_error(400, str(error))
            return
        with LOCK, open(SPANS_FILE, "a") as out:
            for span in spans:
                out.write(json.dumps(span) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", answer_type)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
threading.Timer(300, server.shutdown).start()
server.serve_forever()
