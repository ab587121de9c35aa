#!/usr/bin/env python3
"""Stand-in for Portainer's stack webhook and the gateway's public /healthz (DeploymentTests).

Usage: standin_server.py --record FILE [--webhook-path PATH] [--webhook-status N]
                         [--old-version V] [--new-version V] [--flip-after N]
                         [--health-status N] [--version-in body|header] [--lifetime S]

Listens on 127.0.0.1 on an ephemeral port and prints "PORT <n>" as its first line on stdout.

- POST to --webhook-path (default /api/stacks/webhooks/test-token): answers --webhook-status
  (default 204, with a short body for other statuses). A 2xx answer "deploys" --new-version.
- GET or HEAD /healthz: answers --health-status (default 200) and reports the running version
  in the body ("ok\\nversion: V\\n") or, with --version-in header, in an X-Gateway-Version
  header (body "ok\\n", like config/examples/container.json). After a deploy, the first
  --flip-after answers (default 1) still report the old version, as during a rolling update.
- Anything else: 404.
Every request is appended to FILE as one JSON line: method, path, query (name -> list of
values), headers, body. The server exits by itself after --lifetime seconds (default 60) in
case the test that started it dies; the test stops it earlier by its PID.
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.version = args.old_version
        self.old_answers_left = None  # set by a deploy

    def record(self, entry):
        with self.lock, open(self.args.record, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")

    def deploy(self):
        with self.lock:
            self.old_answers_left = self.args.flip_after

    def current_version(self):
        with self.lock:
            if self.old_answers_left is None:
                return self.version
            if self.old_answers_left > 0:
                self.old_answers_left -= 1
                return self.version
            self.version = self.args.new_version
            return self.version


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        server_version = "standin/1"

        def log_message(self, *args):  # keep stderr quiet
            pass

        def _record(self, body=b""):
            parts = urlsplit(self.path)
            state.record(
                {
                    "method": self.command,
                    "path": parts.path,
                    "query": parse_qs(parts.query),
                    "headers": {k: v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                }
            )
            return parts.path

        def _answer(self, status, body, headers=None):
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            path = self._record(self.rfile.read(length) if length else b"")
            if path != state.args.webhook_path:
                return self._answer(404, "not found\n")
            status = state.args.webhook_status
            if 200 <= status < 300:
                state.deploy()
            if status == 204:
                self.send_response(204)
                self.end_headers()
                return None
            return self._answer(status, "stand-in webhook answered %d\n" % status)

        def do_GET(self):
            path = self._record()
            if path != "/healthz":
                return self._answer(404, "not found\n")
            version = state.current_version()
            if state.args.version_in == "header":
                return self._answer(state.args.health_status, "ok\n", {"X-Gateway-Version": version})
            return self._answer(state.args.health_status, "ok\nversion: %s\n" % version)

        do_HEAD = do_GET

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", required=True)
    parser.add_argument("--webhook-path", default="/api/stacks/webhooks/test-token")
    parser.add_argument("--webhook-status", type=int, default=204)
    parser.add_argument("--old-version", default="old")
    parser.add_argument("--new-version", default="new")
    parser.add_argument("--flip-after", type=int, default=1)
    parser.add_argument("--health-status", type=int, default=200)
    parser.add_argument("--version-in", choices=["body", "header"], default="body")
    parser.add_argument("--lifetime", type=float, default=60.0)
    args = parser.parse_args()

    open(args.record, "w", encoding="utf-8").close()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(State(args)))
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    timer = threading.Timer(args.lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
